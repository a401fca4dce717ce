"""What the three kinds share: nothing here imports a kind.

- :mod:`.options` - the location and ``key=value`` options, checked;
- :mod:`.kinds` - the three kinds told apart, by paths and by options;
- :mod:`.credentials` - settings and password to the tools through a pipe;
- :mod:`.server` - connect, and ask the server what a tool cannot tell;
- :mod:`.flavour`, :mod:`.tools` - MariaDB or MySQL, and its client tools;
- :mod:`.client` - SQL fed to the server's own client, errors with their line;
- :mod:`.grants`, :mod:`.locks` - what the session may do; bounded lock waits;
- :mod:`.gtid`, :mod:`.restore_point` - GTID positions, and the point a restore leaves;
- :mod:`.errors` - how a problem is told; :mod:`.heap` - glibc's heap for streaming.
"""
