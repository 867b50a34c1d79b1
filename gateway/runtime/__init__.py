"""Runtime: aggregation of frames into measurements, the engine tick loop, the snapshot hub."""
