"""Managing pins for apps: pin forms, recommendations, lint, rotation simulation, live
checks, and other tools' pin formats (:mod:`pinwarden.apps.formats`)."""
