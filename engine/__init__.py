"""The pure engine: SpiffWorkflow behind one facade, ``engine.facade.Engine``.

Never imports Flask, ``api/`` or ``handlers/``.
"""
