#!/usr/bin/python3
"""A stand-in for the desktop session's tray and notification services, for the GUI tests.

Run it under `dbus-run-session` (a private session bus). It owns the two names a desktop
provides and an app looks for:

- org.kde.StatusNotifierWatcher: the tray host's registry (KDE, GNOME's AppIndicator extension,
  waybar...). An AppIndicator (Tauri's tray icon on Linux) registers its item there; this host
  then reads the item's label (XAyatanaLabel) and tooltip, and again whenever the item signals a
  change. (AppIndicators have no tooltip.)
- org.freedesktop.Notifications: the notification daemon. Every Notify call is recorded.

It reads commands on stdin, one JSON object per line: {"click": LABEL} clicks the tray menu's
item LABEL (com.canonical.dbusmenu's Event, as a tray host does when the user picks it).

Everything it observes is printed as one JSON object per line on stdout:
  {"bus": ADDRESS}                         once, first: give it to the app as DBUS_SESSION_BUS_ADDRESS
  {"tray": {"label": L, "menu": [LABEL]}}  the tray item's label and menu, on every change
  {"clicked": LABEL}                       a menu item clicked, as asked on stdin
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


MENU = "com.canonical.dbusmenu"


def menu_items(name, menu_path):
    """The item's menu, read through com.canonical.dbusmenu: [(id, label)], separators left out."""
    menu = dbus.Interface(bus.get_object(name, menu_path), MENU)
    _revision, (_root, _props, children) = menu.GetLayout(0, -1, ["label", "type"])
    items = []
    for child in children:
        child_id, props, _ = child
        if props.get("type") == "separator":
            continue
        items.append((int(child_id), str(props.get("label", ""))))
    return items


def item_state(name, path):
    """The item's label and its menu's labels, read through org.freedesktop.DBus.Properties."""
    props = dbus.Interface(bus.get_object(name, path), dbus.PROPERTIES_IFACE)
    state = {"label": str(props.Get(ITEM, "XAyatanaLabel"))}
    menu_path = props.Get(ITEM, "Menu")
    if menu_path:
        state["menu"] = [label for _, label in menu_items(name, menu_path)]
    return state


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
        # The menu says when a label changes (the count) or its layout does.
        bus.add_signal_receiver(
            lambda *args: self.report(name, path), dbus_interface=MENU, bus_name=name
        )
        self.report(name, path)

    def click(self, label):
        """Clicks the menu item `label` of the first registered item that has one, as a tray
        host does (an item whose process is gone is passed over)."""
        errors = []
        for item in self.items:
            name, path = item.split("/", 1)[0], "/" + item.split("/", 1)[1]
            try:
                menu_path = dbus.Interface(bus.get_object(name, path), dbus.PROPERTIES_IFACE).Get(
                    ITEM, "Menu"
                )
                menu = dbus.Interface(bus.get_object(name, menu_path), MENU)
                for item_id, item_label in menu_items(name, menu_path):
                    if item_label == label:
                        menu.Event(item_id, "clicked", dbus.Int32(0, variant_level=1), dbus.UInt32(0))
                        say(clicked=label)
                        return
            except dbus.DBusException as e:
                errors.append(str(e))
        say(error=f"no menu item {label!r}" + "".join(f"; {e}" for e in errors))

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

    # Commands, one JSON object per line on stdin: {"click": LABEL} clicks a tray menu item.
    # Read as bytes and split here: every line of a read is a command, a partial one waits.
    pending = bytearray()

    def command(fd, _condition):
        chunk = os.read(fd, 65536)
        if not chunk:
            return False
        pending.extend(chunk)
        while b"\n" in pending:
            line, _, rest = bytes(pending).partition(b"\n")
            pending[:] = rest
            try:
                order = json.loads(line)
            except ValueError:
                say(error=f"not a command: {line!r}")
                continue
            if "click" in order:
                watcher.click(order["click"])
        return True

    GLib.io_add_watch(sys.stdin.fileno(), GLib.PRIORITY_DEFAULT, GLib.IO_IN | GLib.IO_HUP, command)
    loop = GLib.MainLoop()
    GLib.unix_signal_add(GLib.PRIORITY_DEFAULT, 15, loop.quit)
    loop.run()
    # The bus may be gone already (the whole session is stopped at once): leave without the
    # bindings' name releases, which would fail on a closed connection.
    sys.stdout.flush()
    os._exit(0)


if __name__ == "__main__":
    main()
