"""Restore drills (``mysql+drill://``): prove a snapshot restores, and time it.

``plakar at STORE restore -to mysql+drill:// SNAPSHOT`` needs no running server:

- :mod:`.server`: a private, throwaway server of the snapshot's flavour (and
  major version when the snapshot records it), without network, in a
  temporary directory, killed and removed by the SDK's guardian however the
  drill ends;
- :mod:`.logical`, :mod:`.physical`, :mod:`.binlog`: each kind restored the way
  a user's restore does it (the kinds' own exporters do the work), then checked
  against what the backup recorded;
- :mod:`.report`: one line per database, the summary, the time of each phase and
  the measured recovery time, optionally as JSON;
- :mod:`.space`: the disk a drill needs, estimated before it starts;
- :mod:`.exporter`: the connector, which tells the kind by the snapshot's paths.

The drill is the one package that imports the three kinds: it sits above them.
"""

SCHEME = "mysql+drill"
