"""``fraudkeras serve``: a model server speaking TensorFlow Serving's REST API and
the Open Inference Protocol (V2, REST and gRPC), with health, Prometheus metrics
and hot-swapped model versions. Needs ``pip install 'fraudkeras[serve]'``."""
