"""The benchmark's chain workflow as upstream's native engine receives it, parsed by upstream's own parser.

``parse_raw_request`` downloads the pchain sandbox over HTTP, so the chain's YAML is packed into a sandbox and served
from a loopback HTTP server for the one parse; each workflow then gets the parsed definition with its own outDS
(dataset and task names all start with the outDS, so one textual substitution renames them exactly).
"""

from __future__ import annotations

import functools
import http.server
import io
import json
import tarfile
import tempfile
import threading
from pathlib import Path

_TEMPLATE_OUT_DS = "user.bench.upstreamtemplate"


def parse_chain(yaml_text: str, task_templates: dict, options: dict) -> str:
    """Upstream's workflow definition (JSON text) of ``yaml_text``, with outDS ``_TEMPLATE_OUT_DS``."""
    from pandaserver.workflow.workflow_parser import json_serialize_default, parse_raw_request

    with tempfile.TemporaryDirectory() as root:
        (Path(root) / "cache").mkdir()
        with tarfile.open(Path(root) / "cache" / "chain.tar.gz", "w:gz") as tar:
            data = yaml_text.encode()
            info = tarfile.TarInfo("chain.yaml")
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
        handler = functools.partial(_QuietHandler, directory=root)
        server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        try:
            url = f"http://127.0.0.1:{server.server_address[1]}"
            raw_request = {"sourceURL": url, "sandbox": "chain.tar.gz", "language": "yaml", "workflowSpecFile": "chain.yaml",
                           "outDS": _TEMPLATE_OUT_DS, "taskParams": task_templates}
            ok, fatal, definition = parse_raw_request(f"{url}/cache/chain.tar.gz", "<benchmark chain>", "bench", raw_request)
        finally:
            server.shutdown()
            server.server_close()
    if not ok:
        raise RuntimeError(f"upstream's parse_raw_request refused the benchmark chain (fatal={fatal}); see $PANDA_HOME/log/workflow_parser*")
    definition["options"] = dict(options)
    return json.dumps(definition, default=json_serialize_default)


def definition_for(template_json: str, out_ds: str) -> dict:
    return json.loads(template_json.replace(_TEMPLATE_OUT_DS, out_ds))


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass
