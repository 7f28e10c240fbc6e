"""Plays logind and the desktop's screensavers on a private D-Bus bus, for the workstation-lock tests.

Run as ``python -m tests.support.fake_session_services ADDRESS [--answer-get-session]``. It owns
``org.freedesktop.login1``, ``org.freedesktop.ScreenSaver`` and ``org.gnome.ScreenSaver``, prints ``ready``, then
for each line on stdin sends one signal and prints ``sent``:

- ``lock``: logind ``Session.Lock`` on session ``c2``; ``other-lock``: the same on another session (``c9``);
- ``hint`` / ``hint-false``: ``PropertiesChanged`` of session ``c2`` with ``LockedHint`` true / false;
- ``fdo`` / ``fdo-false`` / ``kde`` / ``gnome``: ``ActiveChanged`` of org.freedesktop.ScreenSaver (true / false),
  of its older ``/ScreenSaver`` path (KDE), and of org.gnome.ScreenSaver.

With ``--answer-get-session`` it first waits for logind's ``Manager.GetSession("auto")`` and answers the path of
session ``c2``, as logind does for the caller's own session.
"""

from __future__ import annotations

import sys

from jeepney import DBusAddress, MessageType, new_method_return, new_signal
from jeepney.bus_messages import message_bus
from jeepney.io.blocking import open_dbus_connection
from jeepney.low_level import Message

SESSION = "/org/freedesktop/login1/session/c2"
OTHER_SESSION = "/org/freedesktop/login1/session/c9"


def _signal(command: str) -> Message:
    session = DBusAddress(SESSION, interface="org.freedesktop.login1.Session")
    properties = DBusAddress(SESSION, interface="org.freedesktop.DBus.Properties")
    fdo = DBusAddress("/org/freedesktop/ScreenSaver", interface="org.freedesktop.ScreenSaver")
    kde = DBusAddress("/ScreenSaver", interface="org.freedesktop.ScreenSaver")
    gnome = DBusAddress("/org/gnome/ScreenSaver", interface="org.gnome.ScreenSaver")
    hint: tuple[object, ...] = ("org.freedesktop.login1.Session", {"LockedHint": ("b", command == "hint")}, [])
    signals = {
        "lock": lambda: new_signal(session, "Lock"),
        "other-lock": lambda: new_signal(
            DBusAddress(OTHER_SESSION, interface="org.freedesktop.login1.Session"), "Lock"
        ),
        "hint": lambda: new_signal(properties, "PropertiesChanged", "sa{sv}as", hint),
        "hint-false": lambda: new_signal(properties, "PropertiesChanged", "sa{sv}as", hint),
        "fdo": lambda: new_signal(fdo, "ActiveChanged", "b", (True,)),
        "fdo-false": lambda: new_signal(fdo, "ActiveChanged", "b", (False,)),
        "kde": lambda: new_signal(kde, "ActiveChanged", "b", (True,)),
        "gnome": lambda: new_signal(gnome, "ActiveChanged", "b", (True,)),
    }
    return signals[command]()


def main() -> None:
    conn = open_dbus_connection(bus=sys.argv[1])
    for name in ("org.freedesktop.login1", "org.freedesktop.ScreenSaver", "org.gnome.ScreenSaver"):
        conn.send_and_get_reply(message_bus.RequestName(name))
    print("ready", flush=True)
    if "--answer-get-session" in sys.argv:
        while True:
            call = conn.receive()
            header = call.header
            if header.message_type == MessageType.method_call and header.fields.get(3) == "GetSession":
                assert call.body == ("auto",)
                conn.send(new_method_return(call, "o", (SESSION,)))
                break
        print("answered", flush=True)
    for line in sys.stdin:
        conn.send(_signal(line.strip()))
        print("sent", flush=True)


if __name__ == "__main__":
    main()
