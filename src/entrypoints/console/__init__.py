"""The web console (issue 17): server-rendered pages in pt-BR for the people who curate
the collections, served by the API itself under /console (docs/decisions/0017-console.md)."""
