"""Independent check of a running Tracery suite with Python grpcio (not tonic).

Asserts that grpc.health.v1 reports SERVING for each of the four services and that
server reflection lists them. Usage: check_served_suite.py [host:port]
"""

import sys
import time

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

SERVICES = [
    "tracery.v1.IdentityService",
    "tracery.v1.CaptureService",
    "tracery.v1.GenealogyService",
    "tracery.v1.IntegrationService",
]


def main() -> int:
    target = sys.argv[1] if len(sys.argv) > 1 else "127.0.0.1:50051"
    channel = grpc.insecure_channel(target)
    grpc.channel_ready_future(channel).result(timeout=60)
    health = health_pb2_grpc.HealthStub(channel)
    deadline = time.monotonic() + 30
    for service in SERVICES:
        while True:
            status = health.Check(health_pb2.HealthCheckRequest(service=service), timeout=5).status
            if status == health_pb2.HealthCheckResponse.SERVING:
                break
            if time.monotonic() > deadline:
                print(f"FAIL: {service} is {status}, not SERVING")
                return 1
            time.sleep(0.2)
        print(f"ok: {service} SERVING")

    reflection = reflection_pb2_grpc.ServerReflectionStub(channel)
    request = reflection_pb2.ServerReflectionRequest(list_services="")
    response = next(reflection.ServerReflectionInfo(iter([request]), timeout=5))
    listed = {s.name for s in response.list_services_response.service}
    missing = [s for s in SERVICES if s not in listed]
    if missing:
        print(f"FAIL: reflection does not list {missing}; it lists {sorted(listed)}")
        return 1
    print(f"ok: reflection lists {sorted(listed)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
