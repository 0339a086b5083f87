"""A real RTSP camera farm for tests and benchmarks: Debian's GStreamer RTSP server.

Runs under the *system* Python (`/usr/bin/python3`), not the project's virtualenv, because
the GStreamer bindings come from Debian. Needed packages (exactly):

    apt-get install -y --no-install-recommends python3-gi python3-gst-1.0 \
        gir1.2-gst-rtsp-server-1.0 gstreamer1.0-rtsp gstreamer1.0-plugins-base gstreamer1.0-plugins-good

(appsrc is in -base, rtph264pay in -good; no encoder is needed here.)

Protocol on stdin (the parent, which has PyAV, encodes the clip in memory and pipes it,
so no clip file exists):
    one JSON line {"mounts": N, "fps": 25, "clips": 1 or 2, "auth": optional}, then each clip's access units as
    records <u32 big-endian length><u8 keyframe flag><Annex-B bytes>, each clip ended by a
    zero length (the second clip, when sent, is the cameras' low-resolution substream,
    served at /subK beside /camK, as an IP camera's second stream);
    then one command per line (a command acts on /camK and /subK together):
      pause K    mount /camK disappears: its clients get end-of-stream, new ones a 404
      resume K   /camK is served again
      freeze K   /camK stays mounted but sends nothing (a hung camera)
      thaw K     /camK sends again
      quit
With "auth": {"method": "digest" or "basic", "user": ..., "password": ...} every mount needs
those credentials (gst-rtsp-server's RTSPAuth: one method per server), as a real camera.
On stdout: `READY <port>` once serving, then `OK <command>` for each command.

Each mount has one shared media fed by `appsrc`, one access unit at a time in real time,
with synthetic timestamps (pts = first running time + n / fps): a looping multifilesrc
would stamp everything 0 and run at twice real time. A new media starts at the clip's
first IDR (the media prerolls at DESCRIBE; what it sends before PLAY still reaches the
first client), like a camera that sends an IDR to a new session.
"""

from __future__ import annotations

import json
import struct
import sys
import threading
import time

import gi

gi.require_version("Gst", "1.0")
gi.require_version("GstRtspServer", "1.0")
gi.require_version("GstRtsp", "1.0")
from gi.repository import GLib, Gst, GstRtsp, GstRtspServer  # noqa: E402

LAUNCH = (
    "( appsrc name=src is-live=true format=time do-timestamp=false min-latency=0 "
    "caps=video/x-h264,stream-format=byte-stream,alignment=au "
    "! rtph264pay name=pay0 pt=96 config-interval=0 aggregate-mode=zero-latency )"
)


def read_clips(stream: object) -> tuple[dict[str, int], list[list[tuple[bytes, bool]]]]:
    header = json.loads(stream.readline())  # type: ignore[attr-defined]
    return header, [read_clip(stream) for _ in range(int(header.get("clips", 1)))]


def read_clip(stream: object) -> list[tuple[bytes, bool]]:
    units = []
    while True:
        head = stream.read(5)  # type: ignore[attr-defined]
        size, key = struct.unpack(">IB", head)
        if size == 0:
            return units
        units.append((stream.read(size), bool(key)))  # type: ignore[attr-defined]


class Mount:
    def __init__(self, farm: Farm, index: int, path: str, units: list[tuple[bytes, bool]]) -> None:
        self.farm = farm
        self.index = index
        self.path = path
        self.units = units
        self.lock = threading.Lock()
        self.appsrc: Gst.Element | None = None
        self.pipeline: Gst.Element | None = None
        self.frame = 0  # frames pushed into the current media: drives the timestamps
        self.clip_pos = 0  # position in the clip
        self.ts0: int | None = None
        self.frozen = False
        self.paused = False
        self.factory: GstRtspServer.RTSPMediaFactory | None = None

    def mount(self) -> None:
        factory = GstRtspServer.RTSPMediaFactory()
        factory.set_launch(LAUNCH)
        factory.set_shared(True)
        factory.set_latency(0)
        factory.connect("media-configure", self.on_configure)
        if self.farm.auth is not None:
            factory.add_role_from_structure(self.farm.role)
        self.factory = factory
        self.farm.mounts_table.add_factory(self.path, factory)

    def on_configure(self, _factory: object, media: GstRtspServer.RTSPMedia) -> None:
        element = media.get_element()
        appsrc = element.get_child_by_name("src")
        with self.lock:
            self.appsrc, self.pipeline, self.frame, self.clip_pos, self.ts0 = appsrc, element, 0, 0, None
        media.connect("unprepared", self.on_unprepared, appsrc)

    def on_unprepared(self, _media: object, appsrc: Gst.Element) -> None:
        with self.lock:
            if self.appsrc is appsrc:
                self.appsrc = self.pipeline = None

    def tick(self) -> None:
        """Push the next access unit if a client is watching (feeder thread)."""
        with self.lock:
            appsrc, pipeline = self.appsrc, self.pipeline
            if appsrc is None or pipeline is None or self.frozen or self.paused:
                return
            clock = pipeline.get_clock()
            if clock is None:
                return  # not playing yet
            if self.ts0 is None:
                self.ts0 = max(0, clock.get_time() - pipeline.get_base_time())
            data, _key = self.units[self.clip_pos % len(self.units)]
            pts = self.ts0 + self.frame * self.farm.period_ns
            self.frame += 1
            self.clip_pos += 1
        buf = Gst.Buffer.new_wrapped(data)
        buf.pts = buf.dts = pts
        buf.duration = self.farm.period_ns
        appsrc.emit("push-buffer", buf)

    def pause(self) -> None:
        with self.lock:
            self.paused = True
            appsrc = self.appsrc
        self.farm.mounts_table.remove_factory(self.path)
        if appsrc is not None:
            appsrc.emit("end-of-stream")
        # kick the sessions of this mount so readers notice at once, as when a camera reboots
        self.farm.server.client_filter(self.farm.kick_mount(self.path))

    def resume(self) -> None:
        with self.lock:
            self.paused = False
        self.mount()


class Farm:
    def __init__(self, mounts: int, fps: int, clips: list[list[tuple[bytes, bool]]],
                 auth: dict[str, str] | None = None) -> None:
        self.period_ns = Gst.SECOND // fps
        self.server = GstRtspServer.RTSPServer()
        self.server.set_address("127.0.0.1")
        self.server.set_service("0")
        self.auth = auth
        if auth is not None:
            self.role = self.protect(auth)
        self.mounts_table = self.server.get_mount_points()
        prefixes = ("/cam", "/sub")
        self.mounts = {
            (i, n): Mount(self, i, f"{prefixes[n]}{i}", units)
            for i in range(1, mounts + 1)
            for n, units in enumerate(clips[:2])
        }
        for mount in self.mounts.values():
            mount.mount()
        self.stop = threading.Event()

    def protect(self, auth: dict[str, str]) -> Gst.Structure:
        """Credentials for every mount; returns the role structure each factory grants."""
        rtsp_auth = GstRtspServer.RTSPAuth()
        token = GstRtspServer.RTSPToken()
        token.set_string(GstRtspServer.RTSP_TOKEN_MEDIA_FACTORY_ROLE, "camera-user")
        if auth["method"] == "digest":
            rtsp_auth.set_supported_methods(GstRtsp.RTSPAuthMethod.DIGEST)
            rtsp_auth.add_digest(auth["user"], auth["password"], token)
        else:
            rtsp_auth.set_supported_methods(GstRtsp.RTSPAuthMethod.BASIC)
            rtsp_auth.add_basic(GstRtspServer.RTSPAuth.make_basic(auth["user"], auth["password"]), token)
        self.server.set_auth(rtsp_auth)
        role = Gst.Structure.new_empty("camera-user")
        role.set_value(GstRtspServer.RTSP_PERM_MEDIA_FACTORY_ACCESS, True)
        role.set_value(GstRtspServer.RTSP_PERM_MEDIA_FACTORY_CONSTRUCT, True)
        return role

    def kick_mount(self, path: str):  # type: ignore[no-untyped-def]
        """A client filter closing the connections that play `path` (one mount per connection)."""

        def plays_path(session: GstRtspServer.RTSPSession) -> bool:
            for sessmedia in session.filter(None):
                ok, _matched = sessmedia.matches(path + "/stream=0")
                if ok:
                    return True
            return False

        def client_filter(_server: object, client: GstRtspServer.RTSPClient) -> object:
            if any(plays_path(session) for session in client.session_filter(None)):
                return GstRtspServer.RTSPFilterResult.REMOVE
            return GstRtspServer.RTSPFilterResult.KEEP

        return client_filter

    def feed(self) -> None:
        start = time.monotonic()
        n = 0
        period = self.period_ns / 1e9
        while not self.stop.is_set():
            for mount in self.mounts.values():
                mount.tick()
            n += 1
            delay = start + n * period - time.monotonic()
            if delay > 0:
                self.stop.wait(delay)

    def command(self, line: str) -> None:
        words = line.split()
        if not words:
            return
        if words[0] == "quit":
            self.stop.set()
            return
        index = int(words[1])
        for mount in (m for (i, _), m in self.mounts.items() if i == index):
            self.apply(words[0], mount)
        print(f"OK {line.strip()}", flush=True)


    @staticmethod
    def apply(verb: str, mount: Mount) -> None:
        if verb == "pause":
            GLib.idle_add(lambda: (mount.pause(), False)[1])
        elif verb == "resume":
            GLib.idle_add(lambda: (mount.resume(), False)[1])
        elif verb == "freeze":
            mount.frozen = True
        elif verb == "thaw":
            mount.frozen = False


def main() -> None:
    Gst.init(None)
    header, clips = read_clips(sys.stdin.buffer)
    farm = Farm(int(header["mounts"]), int(header.get("fps", 25)), clips, header.get("auth"))
    loop = GLib.MainLoop()
    farm.server.attach(None)
    feeder = threading.Thread(target=farm.feed, name="feeder", daemon=True)
    feeder.start()

    def commands() -> None:
        for line in sys.stdin:
            farm.command(line)
            if farm.stop.is_set():
                break
        farm.stop.set()
        GLib.idle_add(loop.quit)

    threading.Thread(target=commands, name="commands", daemon=True).start()
    print(f"READY {farm.server.get_bound_port()}", flush=True)
    loop.run()
    feeder.join(2)


if __name__ == "__main__":
    main()
