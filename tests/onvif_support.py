"""A real third-party ONVIF PTZ device for tests: ipycam's ONVIF service and digital PTZ, headless.

ipycam (PyPI) is a virtual IP camera; its HTTP handler answers ONVIF SOAP (device, media, PTZ with
presets and home) and its ``PTZController`` keeps the pan/tilt/zoom position. We run just those,
in a thread on loopback, without its RTSP/video parts (no camera, no ffmpeg needed).

Two adjustments, neither touching its SOAP handling: presets stay in memory (ipycam saves them to
``ptz_presets.json`` in the working directory), and its envelope template gains the declaration
of the ``ptz``/``tptz`` prefixes its PTZ answers use (ipycam 1.3 leaves them undeclared, which a
strict XML parser such as zeep's rejects for GetPresets and SetPreset).
"""

from __future__ import annotations

import http.server
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from ipycam.config import CameraConfig
from ipycam.http import IPCameraHTTPHandler
from ipycam.onvif import ONVIFService
from ipycam.ptz import PTZController

USER, PASSWORD = "vigie", "onvif-test-password-42"
PTZ_NS = 'xmlns:ptz="http://www.onvif.org/ver20/ptz/wsdl" xmlns:tptz="http://www.onvif.org/ver20/ptz/wsdl" '


class MemoryPTZ(PTZController):
    def _load_presets(self, filepath: str = "") -> None:
        return None

    def _save_presets(self, filepath: str = "") -> None:
        return None


@dataclass
class SimCamera:
    """What the handler reads of an ``IPCamera``: its config, ONVIF service and PTZ controller."""

    config: CameraConfig
    onvif: ONVIFService
    ptz: MemoryPTZ


@dataclass
class Device:
    url: str
    ptz: MemoryPTZ
    server: http.server.ThreadingHTTPServer

    def position(self) -> tuple[float, float, float]:
        s: dict[str, Any] = self.ptz.get_status()
        return (round(s["pan"], 3), round(s["tilt"], 3), round(s["zoom"], 3))


@contextmanager
def onvif_device() -> Iterator[Device]:
    """An ipycam ONVIF PTZ device on 127.0.0.1 with presets ``home`` (the origin) and ``scene``."""
    config = CameraConfig(name="Dôme fosse", local_ip="127.0.0.1", onvif_port=0, username=USER, password=PASSWORD)
    ptz = MemoryPTZ(enable_digital_ptz=False)
    ptz.set_preset("home", "Origine")
    ptz.absolute_move(0.4, -0.2, 0.5)
    ptz.set_preset("scene", "Scène")
    ptz.absolute_move(0.0, 0.0, 0.0)
    service = ONVIFService(config, ptz)
    service._templates["envelope"] = service._templates["envelope"].replace("xmlns:tt=", PTZ_NS + "xmlns:tt=")
    handler = type("Handler", (IPCameraHTTPHandler,), {"camera": SimCamera(config, service, ptz)})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    config.onvif_port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, name="ipycam-onvif", daemon=True)
    thread.start()
    try:
        yield Device(f"http://127.0.0.1:{config.onvif_port}", ptz, server)
    finally:
        server.shutdown()
        server.server_close()
        ptz.stop()
