"""Application wiring of motcua: settings, the command line and the assembly of the engine."""
