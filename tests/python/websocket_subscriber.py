"""An independent WebSocket subscriber of the EPCIS 2.0 REST binding (the `websockets`
library, not Tracery's code): subscribes to a named query's events, prints a line
`{"connected": true}` once the upgrade is done, then one line per event received
(`{"eventID": ..., "recordTime": ...}`), and leaves once it has seen the event `--until`.

Usage: websocket_subscriber.py URL --until EVENT_ID [--initial-record-time TIME]
"""

import argparse
import json
import sys
import urllib.parse

from websockets.sync.client import connect


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("url", help="ws://host:port/queries/NAME/events")
    parser.add_argument("--until", required=True)
    parser.add_argument("--initial-record-time")
    args = parser.parse_args()
    query = {"stream": "true"}
    if args.initial_record_time:
        query["initialRecordTime"] = args.initial_record_time
    url = f"{args.url}?{urllib.parse.urlencode(query)}"
    with connect(url, open_timeout=10) as socket:
        print(json.dumps({"connected": True}), flush=True)
        while True:
            document = json.loads(socket.recv(timeout=30))
            results = document["epcisBody"]["queryResults"]
            for event in results["resultsBody"]["eventList"]:
                print(
                    json.dumps({"eventID": event["eventID"], "recordTime": event["recordTime"]}),
                    flush=True,
                )
                if event["eventID"] == args.until:
                    return 0


if __name__ == "__main__":
    sys.exit(main())
