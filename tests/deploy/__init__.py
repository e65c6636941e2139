"""Deploy layer: the Helm chart, deploy/k8s and a real Kubernetes control plane."""
