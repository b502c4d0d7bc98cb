#!/usr/bin/python3
# A rosbridge subscriber with websocket-client (Debian's python3-websocket):
#   tutorial_subscriber.py URL TOPIC COUNT
# subscribes to TOPIC and prints the first COUNT messages (their "msg" as JSON), then exits 0.
# Exits 1 when no message arrives for 30 s.
import json
import sys

from websocket import WebSocketTimeoutException, create_connection

url = sys.argv[1] if len(sys.argv) > 1 else "ws://127.0.0.1:9090/"
topic = sys.argv[2] if len(sys.argv) > 2 else "/chatter"
count = int(sys.argv[3]) if len(sys.argv) > 3 else 1

ws = create_connection(url, timeout=30)
ws.send(json.dumps({"op": "subscribe", "topic": topic, "type": "std_msgs/String"}))
print("subscribed to %s" % topic, flush=True)
received = 0
try:
    while received < count:
        message = json.loads(ws.recv())
        if message.get("op") == "publish" and message.get("topic") == topic:
            received += 1
            print("received %s" % json.dumps(message["msg"], sort_keys=True), flush=True)
        elif message.get("op") == "status":
            print("status %s: %s" % (message.get("level"), message.get("msg")), flush=True)
except WebSocketTimeoutException:
    print("FAIL: no message on %s within 30 s" % topic, flush=True)
    sys.exit(1)
ws.send(json.dumps({"op": "unsubscribe", "topic": topic}))
ws.close()
