"""Pure domain types: frames, pack state, alarms, identity, snapshots. No I/O, no third-party types."""
