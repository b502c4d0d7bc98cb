#!/usr/bin/python3
# The rosbridge tutorial's publisher, with websocket-client (Debian's python3-websocket):
#   tutorial_publisher.py URL COUNT
# publishes COUNT std_msgs/String messages on /chatter, one every 0.1 s.
import json
import sys
import time

from websocket import create_connection

url = sys.argv[1] if len(sys.argv) > 1 else "ws://127.0.0.1:9090/"
count = int(sys.argv[2]) if len(sys.argv) > 2 else 10

ws = create_connection(url, timeout=10)
ws.send(json.dumps({"op": "advertise", "topic": "/chatter", "type": "std_msgs/String"}))
for i in range(count):
    ws.send(json.dumps({"op": "publish", "topic": "/chatter", "msg": {"data": "hello from python %d" % i}}))
    print("published hello from python %d" % i, flush=True)
    time.sleep(0.1)
ws.send(json.dumps({"op": "unadvertise", "topic": "/chatter"}))
ws.close()
