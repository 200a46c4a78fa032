"""The soak: many hours of stream time, in compressed time, with faults, and its report.

`anchor soak` runs the whole engine in-process in fast mode next to real peers (mosquitto, a
loopback LLM stand-in, OBS under Xvfb), injects faults at set stream times, samples the
process, analyses the stream it wrote packet by packet, and writes a report.
"""
