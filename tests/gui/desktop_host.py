#!/usr/bin/python3
"""A stand-in for the desktop session's tray and notification services, for the GUI tests.

Run it under `dbus-run-session` (a private session bus). It owns the two names a desktop
provides and an app looks for:

- org.kde.StatusNotifierWatcher: the tray host's registry (KDE, GNOME's AppIndicator extension,
  waybar...). An AppIndicator (Tauri's tray icon on Linux) registers its item there; this host
  then reads the item's label (XAyatanaLabel) and tooltip, and again whenever the item signals a
  change. (AppIndicators have no tooltip.)
- org.freedesktop.Notifications: the notification daemon. Every Notify call is recorded.

Everything it observes is printed as one JSON object per line on stdout:
  {"bus": ADDRESS}                         once, first: give it to the app as DBUS_SESSION_BUS_ADDRESS
  {"tray": {"label": L}}                   the tray item's label, on every change
  {"notification": {"app", "summary", "body", "urgency"}}
"""

import json
import os
import sys

import dbus
import dbus.mainloop.glib
import dbus.service
from gi.repository import GLib

dbus.mainloop.glib.DBusGMainLoop(set_as_default=True)
bus = dbus.SessionBus()

ITEM = "org.kde.StatusNotifierItem"


def say(**fields):
    print(json.dumps(fields), flush=True)


def item_state(name, path):
    """The item's label, read through org.freedesktop.DBus.Properties."""
    props = dbus.Interface(bus.get_object(name, path), dbus.PROPERTIES_IFACE)
    return {"label": str(props.Get(ITEM, "XAyatanaLabel"))}


class Watcher(dbus.service.Object):
    IFACE = "org.kde.StatusNotifierWatcher"

    def __init__(self):
        super().__init__(bus, "/StatusNotifierWatcher")
        self.items = []
        self.last = {}

    @dbus.service.method(IFACE, in_signature="s", sender_keyword="sender")
    def RegisterStatusNotifierItem(self, service, sender=None):
        # AppIndicator passes its object path; other implementations pass a bus name.
        name, path = (sender, service) if service.startswith("/") else (service, "/StatusNotifierItem")
        self.items.append(name + path)
        self.StatusNotifierItemRegistered(name + path)
        bus.add_signal_receiver(
            lambda *args: self.report(name, path), dbus_interface=ITEM, bus_name=name, path=path
        )
        self.report(name, path)

    def report(self, name, path):
        try:
            state = item_state(name, path)
        except dbus.DBusException as e:
            say(error=str(e))
            return
        if state != self.last.get(name + path):
            self.last[name + path] = state
            say(tray=state)

    @dbus.service.method(IFACE, in_signature="s")
    def RegisterStatusNotifierHost(self, service):
        pass

    @dbus.service.signal(IFACE, signature="s")
    def StatusNotifierItemRegistered(self, item):
        pass

    @dbus.service.method(dbus.PROPERTIES_IFACE, in_signature="ss", out_signature="v")
    def Get(self, interface, prop):
        return self.GetAll(interface)[prop]

    @dbus.service.method(dbus.PROPERTIES_IFACE, in_signature="s", out_signature="a{sv}")
    def GetAll(self, interface):
        return {
            "IsStatusNotifierHostRegistered": True,
            "ProtocolVersion": dbus.Int32(0),
            "RegisteredStatusNotifierItems": dbus.Array(self.items, signature="s"),
        }


class Notifications(dbus.service.Object):
    IFACE = "org.freedesktop.Notifications"

    def __init__(self):
        super().__init__(bus, "/org/freedesktop/Notifications")
        self.sent = 0

    @dbus.service.method(IFACE, in_signature="susssasa{sv}i", out_signature="u")
    def Notify(self, app, replaces_id, icon, summary, body, actions, hints, timeout):
        self.sent += 1
        urgency = hints.get("urgency")
        say(
            notification={
                "app": str(app),
                "summary": str(summary),
                "body": str(body),
                "urgency": int(urgency) if urgency is not None else None,
            }
        )
        return dbus.UInt32(self.sent)

    @dbus.service.method(IFACE, out_signature="as")
    def GetCapabilities(self):
        return ["body"]

    @dbus.service.method(IFACE, out_signature="ssss")
    def GetServerInformation(self):
        return ("watchfloor-test-desktop-host", "watchfloor", "1", "1.2")

    @dbus.service.method(IFACE, in_signature="u")
    def CloseNotification(self, notification_id):
        self.NotificationClosed(notification_id, dbus.UInt32(3))

    @dbus.service.signal(IFACE, signature="uu")
    def NotificationClosed(self, notification_id, reason):
        pass


def main():
    watcher = Watcher()
    notifications = Notifications()
    # Names last: an app that sees them finds the objects already there.
    names = [
        dbus.service.BusName("org.kde.StatusNotifierWatcher", bus),
        dbus.service.BusName("org.freedesktop.Notifications", bus),
    ]
    say(bus=os.environ["DBUS_SESSION_BUS_ADDRESS"])
    loop = GLib.MainLoop()
    GLib.unix_signal_add(GLib.PRIORITY_DEFAULT, 15, loop.quit)
    loop.run()
    # The bus may be gone already (the whole session is stopped at once): leave without the
    # bindings' name releases, which would fail on a closed connection.
    sys.stdout.flush()
    os._exit(0)


if __name__ == "__main__":
    main()
