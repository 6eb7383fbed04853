"""Schedules: steps run on a server at cron times or intervals (:mod:`.model` says what
a schedule is, :mod:`.scheduler` when it runs, :mod:`.runner` what a run does)."""
