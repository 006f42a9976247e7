"""Log one small scikit-learn model with the stock MLflow client to the server in
MLFLOW_TRACKING_URI (MLFLOW_TRACKING_TOKEN set for ours only) and print its ids as JSON: the
source every benchmark version is registered from."""

import json
import sys

import mlflow
from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression

experiment = sys.argv[1] if len(sys.argv) > 1 else "benchmark"
X, y = load_iris(return_X_y=True, as_frame=True)
model = LogisticRegression(max_iter=300).fit(X, y)
mlflow.set_experiment(experiment)
with mlflow.start_run() as run:
    info = mlflow.sklearn.log_model(model, name="model", input_example=X.iloc[:5])
print(json.dumps({"model_id": info.model_id, "run_id": run.info.run_id, "source": f"models:/{info.model_id}"}))
