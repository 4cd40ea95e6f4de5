"""houseprice: validated data in, trustworthy house-price model out, every night."""

import os

# Set before Prefect or Great Expectations is imported anywhere in the process (and inherited by
# the temporary Prefect server and the training workers): with analytics on, the temporary
# server's telemetry writer logs "database is locked", and nothing here may phone home.
for _name, _value in {
    "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
    "GX_ANALYTICS_ENABLED": "false",
    "TF_CPP_MIN_LOG_LEVEL": "2",  # TensorFlow's C++ start-up banner is noise in flow logs
    # oneDNN's "custom operations are on" notice is printed to the terminal before absl's logging
    # starts (so the level above cannot stop it); its fused kernels serve float32 conv/matmul,
    # while the trainers compute in float64 on a few columns.
    "TF_ENABLE_ONEDNN_OPTS": "0",
}.items():
    os.environ.setdefault(_name, _value)
