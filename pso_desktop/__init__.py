"""PSO Desktop: patient safety event reporting client."""
