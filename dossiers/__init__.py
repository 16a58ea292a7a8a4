"""The dossier domain: catalogue, calendar, dossier lifecycle, documents."""
