from rest_framework.authentication import TokenAuthentication


class BearerTokenAuthentication(TokenAuthentication):
    """`Authorization: Bearer <token>`, which is what MLFLOW_TRACKING_TOKEN sends."""

    keyword = "Bearer"
