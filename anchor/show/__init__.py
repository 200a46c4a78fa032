"""The show: what the host says and when.

Schedules (`schedule`) are read and checked; the `Director` walks the day's segments and
timetable; the `Rundown` decides sentence by sentence what airs next (operator lines, then
viewers' answers, then the schedule) and feeds the line queue; `Control` takes operator
commands; `ShowBookmark` remembers the place across restarts; `AirLog` keeps the as-run log.
"""
