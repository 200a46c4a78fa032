"""Operations: what the operator runs and watches besides the show.

`telemetry` gathers the channel's figures and health verdict; `metrics` and `health` expose
them over HTTP; `watchdog` notices a stalled loop or renderer; `logs` sets up rotating,
structured logs; `doctor` checks what is installed and reachable.
"""
