"""Real peers for tests, the soak and benchmarks: never imported by the engine.

`mosquitto` starts a broker with a given configuration, `obs_studio` starts OBS Studio under
Xvfb and speaks obs-websocket to it, `standins` are loopback servers that speak an LLM's and a
TTS server's real HTTP protocols, with faults on demand.
"""
