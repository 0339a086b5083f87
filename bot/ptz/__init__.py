"""PTZ camera drivers: ONVIF over the network (``onvif_camera``), and the demo's synthetic dome (``synthetic``).

Both satisfy ``bot.ptz_control.PtzDriver``; the composition root picks one per ``[camera.ptz]``.
"""
