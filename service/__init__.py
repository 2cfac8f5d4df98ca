"""`bookvec serve`: the HTTP API and the web page over the library (FastAPI).

The service only parses, calls the library (``bookvec.open_index``) and presents its results'
``to_dict()``: the JSON of a response is the JSON the CLI prints with --json. Built by
``bookvec.service.app.create_app``; run by ``bookvec serve`` (cli/serve.py).
"""
