"""MLflow's model registry REST API 2.0, on /api/2.0/mlflow/ and /ajax-api/2.0/mlflow/."""
