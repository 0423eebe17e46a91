"""The servers ``bench_serving.py`` compares ``fraudkeras serve`` with, each around
the same LiteRT file and answering the same V2 JSON request:

- ``reference``: Starlette + uvicorn calling the LiteRT SignatureRunner, no checks,
  no metrics: the least a Python server can do;
- ``kserve``: KServe's ``ModelServer`` (FastAPI/uvicorn) with a ``Model`` around
  the same SignatureRunner, default logging,
  its gRPC off (REST only is measured) and bound to loopback.

    python scripts/bench_serving_servers.py {reference,kserve} MODEL.tflite PORT
"""

from __future__ import annotations

import sys
from typing import Any

import numpy as np
from ai_edge_litert.interpreter import Interpreter


def runner(model: str) -> Any:
    return Interpreter(model_path=model).get_signature_runner("serve")


def reference(model: str, port: int) -> None:
    import orjson
    import uvicorn
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import Response
    from starlette.routing import Route

    serve = runner(model)

    async def infer(request: Request) -> Response:
        tensor = orjson.loads(await request.body())["inputs"][0]
        x = np.asarray(tensor["data"], dtype=np.float32).reshape(tensor["shape"])
        p = serve(transactions=x)["fraud_probability"].ravel()
        outputs = [{"name": "fraud_probability", "datatype": "FP32", "shape": [len(p)],
                    "data": p.tolist()}]  # fmt: skip
        return Response(orjson.dumps({"outputs": outputs}), media_type="application/json")

    app = Starlette(routes=[Route("/v2/models/fraud/infer", infer, methods=["POST"])])
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", access_log=False)


def kserve(model: str, port: int) -> None:
    import uvicorn
    from kserve import InferRequest, InferResponse, Model, ModelServer

    _loopback_only(uvicorn)
    from kserve.protocol.infer_type import InferOutput

    class Fraud(Model):  # type: ignore[misc]
        def __init__(self) -> None:
            super().__init__("fraud")
            self.serve = runner(model)
            self.ready = True

        def predict(self, payload: InferRequest, headers: Any = None) -> InferResponse:
            x = payload.inputs[0].as_numpy().astype(np.float32)
            p = self.serve(transactions=x)["fraud_probability"].ravel()
            output = InferOutput("fraud_probability", [len(p)], "FP32", p.tolist())
            return InferResponse(payload.id or "", self.name, [output])

    ModelServer(http_port=port, enable_grpc=False, workers=1).start([Fraud()])


def _loopback_only(uvicorn: Any) -> None:
    """KServe binds 0.0.0.0 with no option to change it; this benchmark stays on loopback."""
    original = uvicorn.Config.__init__

    def init(self: Any, *args: Any, **kwargs: Any) -> None:
        kwargs["host"] = "127.0.0.1"
        original(self, *args, **kwargs)

    uvicorn.Config.__init__ = init


if __name__ == "__main__":
    kind, path, port_text = sys.argv[1:4]
    {"reference": reference, "kserve": kserve}[kind](path, int(port_text))
