"""Write deploy/helm/parley/values.schema.json (the chart's values schema, kept as code here).

    python deploy/tools/gen-values-schema.py [--check]     # then commit the JSON

Every object refuses unknown keys; integers carry their bounds. Cross-field rules the schema
cannot express (HPA min <= max, workers <= partitions, the JWT secret) are `fail`s in
templates/_helpers.tpl ("parley.validate").
"""

import json
import sys
from pathlib import Path

OUT = Path(__file__).resolve().parents[1] / "helm" / "parley" / "values.schema.json"
S = {"type": "string"}
B = {"type": "boolean"}


def integer(mn=None, mx=None):
    d = {"type": "integer"}
    if mn is not None:
        d["minimum"] = mn
    if mx is not None:
        d["maximum"] = mx
    return d


def obj(props, req=None, desc=None, extra=False):
    d = {"type": "object", "additionalProperties": extra, "properties": props}
    if req:
        d["required"] = req
    if desc:
        d["description"] = desc
    return d


PORT = integer(1, 65535)
OPEN = {"type": "object"}
LIST = {"type": "array"}
SECRET_KEYS = [
    "PARLEY_JWT_SECRET",
    "PARLEY_JWT_PRIVATE_KEY",
    "PARLEY_JWT_PUBLIC_KEY",
    "PARLEY_ENCRYPTION_KEYS",
    "PARLEY_ADMIN_UI_PASSWORD",
    "PARLEY_REDIS_PASSWORD",
    "PARLEY_KAFKA_PASSWORD",
    "PARLEY_CASSANDRA_PASSWORD",
    "PARLEY_API_KEYS",
    "PARLEY_WEBHOOKS",
]
SCALAR = {"type": ["string", "number", "boolean"]}


def envmap(desc):
    return {
        "type": "object",
        "description": desc,
        "propertyNames": {"pattern": "^PARLEY_[A-Z0-9_]+$"},
        "additionalProperties": SCALAR,
    }


QTY = {"type": ["string", "integer"], "pattern": "^[0-9]+(\\.[0-9]+)?(m|Ki|Mi|Gi|Ti|k|M|G|T)?$"}
RES_SIDE = obj({"cpu": QTY, "memory": QTY, "ephemeral-storage": QTY})
RES = obj({"requests": RES_SIDE, "limits": RES_SIDE})
PROBE = obj(
    {
        "periodSeconds": integer(1),
        "timeoutSeconds": integer(1),
        "failureThreshold": integer(1),
        "successThreshold": integer(1),
        "initialDelaySeconds": integer(0),
    }
)
PROBES = obj(
    {"liveness": PROBE, "readiness": PROBE, "startup": PROBE}, ["liveness", "readiness", "startup"]
)
PDB = obj(
    {
        "enabled": B,
        "maxUnavailable": {"type": ["integer", "string"], "minimum": 1, "pattern": "^[0-9]+%$"},
    }
)


def workload(extra, min_replicas=0):
    p = {
        "replicas": integer(min_replicas),
        "port": PORT,
        "resources": RES,
        "env": envmap("Extra PARLEY_* env of this workload (no secrets: use secrets.*)."),
        "podAnnotations": OPEN,
        "podLabels": OPEN,
        "nodeSelector": OPEN,
        "tolerations": LIST,
        "affinity": OPEN,
        "topologySpreadConstraints": LIST,
        "priorityClassName": S,
        "terminationGracePeriodSeconds": integer(0),
        "probes": PROBES,
        "pdb": PDB,
    }
    p.update(extra)
    return obj(p)


PEER = OPEN
ENGINE_EGRESS = obj({"ports": {"type": "array", "items": PORT, "minItems": 1}, "to": LIST})


def dev_engine(extra=None):
    return obj(
        {"image": {"type": "string", "minLength": 1}, "storage": QTY, "resources": RES}
        | (extra or {})
    )


schema = {
    "$schema": "http://json-schema.org/draft-07/schema#",
    "title": "Parley chart values",
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "global": OPEN,
        "nameOverride": S,
        "fullnameOverride": S,
        "commonLabels": {"type": "object", "additionalProperties": S},
        "image": obj(
            {
                "repository": {"type": "string", "minLength": 1},
                "tag": {
                    "type": "string",
                    "description": "A string: quote numeric tags (--set-string image.tag=1.0)",
                },
                "digest": {"type": "string", "pattern": "^(sha256:[a-f0-9]{64})?$"},
                "pullPolicy": {"enum": ["Always", "IfNotPresent", "Never"]},
            }
        ),
        "imagePullSecrets": {"type": "array", "items": obj({"name": S}, ["name"])},
        "serviceAccount": obj({"create": B, "name": S, "annotations": OPEN}),
        "auth": obj(
            {
                "algorithm": {"enum": ["HS256", "RS256"]},
                "jwtSecret": S,
                "jwtPublicKey": S,
                "jwtPrivateKey": S,
                "audience": S,
                "issuer": S,
            }
        ),
        "secrets": obj(
            {
                k: S
                for k in [
                    "existingSecret",
                    "encryptionKeys",
                    "adminUiPassword",
                    "redisPassword",
                    "kafkaPassword",
                    "cassandraPassword",
                ]
            }
        ),
        "redis": obj(
            {
                "url": {"type": "string", "pattern": "^rediss?://"},
                "prefix": S,
                "username": S,
                "tls": B,
                "tlsCaFile": S,
            }
        ),
        "kafka": obj(
            {
                "bootstrap": {"type": "string", "minLength": 1},
                "topic": {"type": "string", "minLength": 1},
                "partitions": integer(1),
                "replication": integer(1),
                "group": {"type": "string", "minLength": 1},
                "securityProtocol": {"enum": ["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"]},
                "saslMechanism": {"enum": ["SCRAM-SHA-512", "SCRAM-SHA-256", "PLAIN"]},
                "username": S,
                "tlsCaFile": S,
            }
        ),
        "cassandra": obj(
            {
                "hosts": {"type": "string", "minLength": 1},
                "port": PORT,
                "keyspace": {"type": "string", "pattern": "^[A-Za-z][A-Za-z0-9_]{0,47}$"},
                "replication": {"type": "string", "minLength": 1},
                "username": S,
                "tls": B,
                "tlsCaFile": S,
            }
        ),
        "config": envmap(
            "Any other PARLEY_* setting. Secret settings are refused here: they belong in a Secret."
        ),
        "metrics": obj({"port": PORT}),
        "trustedProxies": S,
        "podSecurityContext": OPEN,
        "securityContext": OPEN,
        "extraVolumes": LIST,
        "extraVolumeMounts": LIST,
        "gateway": workload(
            {
                "drain": obj(
                    {
                        "seconds": integer(0),
                        "disconnectSeconds": integer(0),
                        "preStopSeconds": integer(0),
                        "shutdownMarginSeconds": integer(10),
                    }
                ),
                "service": obj(
                    {
                        "type": {"enum": ["ClusterIP", "NodePort", "LoadBalancer"]},
                        "port": PORT,
                        "sessionAffinity": {"enum": ["ClientIP", "None", ""]},
                        "sessionAffinityTimeoutSeconds": integer(1, 86400),
                        "annotations": OPEN,
                    }
                ),
                "autoscaling": obj(
                    {
                        "enabled": B,
                        "minReplicas": integer(1),
                        "maxReplicas": integer(1),
                        "targetCPUUtilizationPercentage": integer(1, 100),
                        "connectionsPerPod": obj(
                            {
                                "enabled": B,
                                "metricName": {"type": "string", "minLength": 1},
                                "target": integer(1),
                            }
                        ),
                        "scaleDownStabilizationSeconds": integer(0, 3600),
                        "scaleDownPods": integer(1),
                        "scaleDownPeriodSeconds": integer(1, 1800),
                    }
                ),
            }
        ),
        "persistence": workload({}, 0),
        "presence": workload({"service": obj({"port": PORT})}, 2),
        "webhooks": workload(
            {
                "enabled": B,
                "existingSecret": S,
                "secretKey": {"type": "string", "pattern": "^[-._a-zA-Z0-9]+$"},
                "egress": LIST,
            },
            1,
        ),
        "migrate": obj(
            {
                "enabled": B,
                "backoffLimit": integer(0),
                "activeDeadlineSeconds": integer(1),
                "resources": RES,
            }
        ),
        "ingress": obj(
            {
                "enabled": B,
                "className": S,
                "nginxAnnotations": B,
                "wsTimeoutSeconds": integer(3600),
                "cookieName": {"type": "string", "pattern": "^[A-Za-z0-9_-]+$"},
                "annotations": OPEN,
                "host": S,
                "tls": LIST,
                "routeApi": B,
                "routeAdminUi": B,
            }
        ),
        "httpRoute": obj(
            {
                "enabled": B,
                "parentRefs": LIST,
                "hostnames": {"type": "array", "items": S},
                "sessionPersistence": B,
                "requestTimeout": {"type": "string", "pattern": "^([0-9]+(h|m|s|ms))+$"},
                "routeApi": B,
            }
        ),
        "networkPolicy": obj(
            {
                "enabled": B,
                "ingressController": PEER,
                "metricsScraper": PEER,
                "dns": LIST,
                "egress": obj(
                    {"redis": ENGINE_EGRESS, "kafka": ENGINE_EGRESS, "cassandra": ENGINE_EGRESS}
                ),
                "extraEgress": LIST,
            }
        ),
        "serviceMonitor": obj({"enabled": B, "interval": S, "scrapeTimeout": S, "labels": OPEN}),
        "prometheusRule": obj({"enabled": B, "labels": OPEN}),
        "grafanaDashboards": obj(
            {
                "enabled": B,
                "label": {"type": "string", "minLength": 1},
                "labelValue": S,
                "folder": S,
            }
        ),
        "tests": obj({"enabled": B}),
        "dev": obj(
            {
                "enabled": B,
                "storageClass": S,
                "deleteVolumesOnUninstall": B,
                "redis": dev_engine(),
                "kafka": dev_engine(),
                "cassandra": dev_engine({"heap": {"type": "string", "pattern": "^[0-9]+[MG]$"}}),
            }
        ),
    },
}
# replicas must be >= 0 for every workload; presence >= 2 (leader lease failover)
schema["properties"]["persistence"]["properties"]["replicas"] = integer(1)
schema["properties"]["gateway"]["properties"]["replicas"] = integer(1)
TEXT = json.dumps(schema, indent=2) + "\n"

if __name__ == "__main__":
    if "--check" in sys.argv:
        if not OUT.exists() or OUT.read_text() != TEXT:
            sys.exit(
                "values.schema.json is out of date: run python deploy/tools/gen-values-schema.py"
            )
    else:
        OUT.write_text(TEXT)
