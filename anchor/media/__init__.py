"""Media: one clock, the deadline loop and the encoded stream.

`MediaClock` owns stream time (the audio sample count is the master); `Playout` paces frames by
absolute deadlines and pulls sentences from the `LineQueue`; `lipsync` turns audio and phoneme
cues into mouth levels; `encoder` makes H.264 + AAC in one container and `output`/`transport`
say where it goes (file, UDP, SRT, RTMP); `safearea` knows which parts of the picture a
platform's app covers, so the renderer and OBS keep text out of them.
"""
