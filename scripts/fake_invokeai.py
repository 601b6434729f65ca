"""Simulated InvokeAI servers for `scripts/bench-pool --simulated`: one process, many ports.

Each server speaks the part of the InvokeAI 6.14.2 API a sweep uses: app version, the OpenAPI
schemas (the snapshot shipped in `schemas/`), image upload, metadata, full download and delete,
`enqueue_batch` (the batch's data expanded as InvokeAI does: a product over the outer list, zipped
within an inner list, times `runs`), the queue's item, summary, batch and status calls, cancel,
and the Socket.IO events a runner subscribes to (`subscribe_queue`, then
`queue_item_status_changed` for each change, with the batch's counts). Like InvokeAI, a server runs
one session at a time, in the order enqueued; a session takes a fixed time (the base time times
the server's slowdown) and every non-intermediate node of its graph returns a tiny PNG.

Usage (run with the InvokeAI venv's python, which has python-socketio, starlette and uvicorn):
    fake_invokeai.py SESSION_MS SLOWDOWN [SLOWDOWN ...]
starts one server per SLOWDOWN (e.g. `50 1 2 4`: sessions of 50, 100 and 200 ms) on free loopback
ports, prints each server's URL on a line, then `ready`, and serves until stdin closes. Requests
it has no route for are told on stderr; FAKE_INVOKEAI_VERBOSE=1 also tells event subscriptions.
"""
import asyncio
import itertools
import json
import os
import pathlib
import socket
import struct
import sys
import uuid
import zlib
from collections import defaultdict
from datetime import datetime, timezone

import socketio
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

ROOT = pathlib.Path(__file__).resolve().parent.parent
OPENAPI = (ROOT / "schemas" / "invocations-6.14.2.json").read_bytes()
QUEUE = "/api/v1/queue/{queue_id}"
VERBOSE = bool(os.environ.get("FAKE_INVOKEAI_VERBOSE"))  # tell subscriptions on stderr


def tiny_png():
    """An 8x8 grey PNG."""
    def chunk(kind, data):
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))
    rows = b"".join(b"\x00" + b"\x80" * 8 for _ in range(8))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", 8, 8, 8, 0, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b""))


PNG = tiny_png()
PASS_THROUGH = {"image", "load_image", "video"}


def now():
    return datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M:%S.%f")[:-3]


async def not_found(request, exc):
    print(f"fake: no route for {request.method} {request.url.path}", file=sys.stderr, flush=True)
    return JSONResponse({"detail": "Not Found"}, status_code=404)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class FakeServer:
    def __init__(self, session_s):
        self.session_s = session_s
        self.items = {}  # item_id -> queue item (full)
        self.pending = asyncio.Queue()
        self.next_id = itertools.count(1)
        self.images = {}  # image_name -> DTO
        self.tally = defaultdict(lambda: defaultdict(int))  # batch_id -> status -> count
        self.sio = socketio.AsyncServer(async_mode="asgi", cors_allowed_origins="*")
        self.sio.on("subscribe_queue", self.subscribe_queue)
        self.sio.on("unsubscribe_queue", self.unsubscribe_queue)
        self.sio.on("subscribe_bulk_download", lambda *a: None)
        routes = [
            Route("/openapi.json", lambda r: Response(OPENAPI, media_type="application/json")),
            Route("/api/v1/app/version", lambda r: JSONResponse({"version": "6.14.2", "highlights": []})),
            Route("/api/v1/auth/status", lambda r: JSONResponse(
                {"setup_required": False, "multiuser_enabled": False, "strict_password_checking": False})),
            Route("/api/v1/images/upload", self.upload, methods=["POST"]),
            Route("/api/v1/images/i/{name}", self.image, methods=["GET", "DELETE"]),
            Route("/api/v1/images/i/{name}/full", self.full),
            Route("/api/v1/images/i/{name}/metadata", lambda r: JSONResponse(None)),
            Route("/api/v1/images/delete", self.delete_images, methods=["POST"]),
            Route("/api/v1/images/images_by_names", self.images_by_names, methods=["POST"]),
            Route(QUEUE + "/enqueue_batch", self.enqueue, methods=["POST"]),
            Route(QUEUE + "/items_by_ids", self.items_by_ids, methods=["POST"]),
            Route(QUEUE + "/item_summaries_by_ids", self.summaries_by_ids, methods=["POST"]),
            Route(QUEUE + "/item_ids", self.item_ids),
            Route(QUEUE + "/i/{item_id:int}", self.item, methods=["GET", "DELETE"]),
            Route(QUEUE + "/i/{item_id:int}/cancel", self.cancel_item, methods=["PUT"]),
            Route(QUEUE + "/cancel_by_batch_ids", self.cancel_batches, methods=["PUT"]),
            Route(QUEUE + "/b/{batch_id}/status", self.batch_status),
            Route(QUEUE + "/status", self.status),
        ]
        api = Starlette(routes=routes, exception_handlers={404: not_found})
        self.app = socketio.ASGIApp(self.sio, other_asgi_app=api, socketio_path="/ws/socket.io")

    # --- events ---
    async def subscribe_queue(self, sid, data):
        if VERBOSE:
            print(f"fake: {sid} subscribed to {data}", file=sys.stderr, flush=True)
        await self.sio.enter_room(sid, (data or {}).get("queue_id", "default"))

    async def unsubscribe_queue(self, sid, data):
        await self.sio.leave_room(sid, (data or {}).get("queue_id", "default"))

    def counts(self, batch_id=None):
        c = dict.fromkeys(("pending", "in_progress", "waiting", "completed", "failed", "canceled"), 0)
        for batch, tally in self.tally.items():
            if batch_id is None or batch == batch_id:
                for status, n in tally.items():
                    c[status] += n
        c["total"] = sum(c.values())
        return c

    def set_status(self, item, status):
        tally = self.tally[item["batch_id"]]
        tally[item["status"]] -= 1
        tally[status] += 1
        item["status"] = status

    async def changed(self, item):
        item["status_sequence"] = (item.get("status_sequence") or 0) + 1
        item["updated_at"] = now()
        payload = {k: item[k] for k in ("queue_id", "item_id", "batch_id", "origin", "destination",
                                        "session_id", "status", "status_sequence", "error_type",
                                        "error_message", "error_traceback", "created_at",
                                        "updated_at", "started_at", "completed_at")}
        payload["user_id"] = None
        payload["timestamp"] = int(datetime.now().timestamp())
        payload["batch_status"] = {"queue_id": item["queue_id"], "batch_id": item["batch_id"],
                                   "origin": item["origin"], "destination": item["destination"],
                                   **self.counts(item["batch_id"])}
        payload["queue_status"] = {"queue_id": item["queue_id"], "item_id": item["item_id"],
                                   "batch_id": item["batch_id"], "session_id": item["session_id"],
                                   **self.counts()}
        await self.sio.emit("queue_item_status_changed", payload, room=item["queue_id"])

    # --- the processor: one session at a time ---
    async def process(self):
        loop = asyncio.get_running_loop()
        free_at = 0.0  # when the last session ended (the loop's clock)
        while True:
            arrived, item = await self.pending.get()
            if item["status"] != "pending":
                continue
            # A session takes session_s from when the server is free and the item is there; the
            # fake's own overhead between sessions is absorbed, not added to each (it would add up).
            start = max(free_at, arrived)
            self.set_status(item, "in_progress")
            item["started_at"] = now()
            await self.changed(item)
            free_at = start + self.session_s
            await asyncio.sleep(max(0.0, free_at - loop.time()))
            if item["status"] != "in_progress":
                continue  # canceled while running
            session = item["session"]
            for node_id, node in session["graph"]["nodes"].items():
                if node.get("is_intermediate", True) or node.get("type") in PASS_THROUGH:
                    continue
                name = f"{uuid.uuid4()}.png"
                self.images[name] = self.dto(name, session["id"], node_id)
                prepared = session["source_prepared_mapping"][node_id][0]
                session["results"][prepared] = {"type": "image_output", "width": 8, "height": 8,
                                                "image": {"image_name": name}}
            self.set_status(item, "completed")
            item["completed_at"] = now()
            await self.changed(item)

    # --- images ---
    def dto(self, name, session_id=None, node_id=None, intermediate=False, category="general"):
        t = now()
        return {"image_name": name, "image_url": f"api/v1/images/i/{name}/full",
                "thumbnail_url": f"api/v1/images/i/{name}/thumbnail", "image_origin": "internal",
                "image_category": category, "width": 8, "height": 8, "created_at": t,
                "updated_at": t, "deleted_at": None, "is_intermediate": intermediate,
                "session_id": session_id, "node_id": node_id, "starred": False,
                "has_workflow": False, "board_id": None}

    async def upload(self, request: Request):
        form = await request.form()
        await form["file"].read()
        q = request.query_params
        dto = self.dto(f"{uuid.uuid4()}.png", intermediate=q.get("is_intermediate") == "true",
                       category=q.get("image_category", "user"))
        self.images[dto["image_name"]] = dto
        return JSONResponse(dto, status_code=201)

    async def image(self, request: Request):
        name = request.path_params["name"]
        if name not in self.images:
            return JSONResponse({"detail": "Image not found"}, status_code=404)
        if request.method == "DELETE":
            del self.images[name]
            return JSONResponse({"deleted_images": [name], "affected_boards": []})
        return JSONResponse(self.images[name])

    async def full(self, request: Request):
        if request.path_params["name"] not in self.images:
            return JSONResponse({"detail": "Image not found"}, status_code=404)
        return Response(PNG, media_type="image/png")

    async def images_by_names(self, request: Request):
        names = (await request.json()).get("image_names", [])
        return JSONResponse([self.images[n] for n in names if n in self.images])

    async def delete_images(self, request: Request):
        names = (await request.json()).get("image_names", [])
        deleted = [n for n in names if self.images.pop(n, None) is not None]
        return JSONResponse({"deleted_images": deleted, "affected_boards": []})

    # --- the queue ---
    async def enqueue(self, request: Request):
        body = await request.json()
        batch, queue_id = body["batch"], request.path_params["queue_id"]
        batch_id = batch.get("batch_id") or str(uuid.uuid4())
        batch["batch_id"] = batch_id
        groups = []
        for group in batch.get("data") or []:
            groups.append(list(zip(*[[(d["node_path"], d["field_name"], v) for v in d["items"]]
                                     for d in group])))
        combos = list(itertools.product(*groups)) if groups else [()]
        ids, created = [], now()
        for _ in range(batch.get("runs", 1)):
            for combo in combos:
                values = [v for zipped in combo for v in zipped]
                graph = json.loads(json.dumps(batch["graph"]))
                for node_path, field, value in values:
                    graph["nodes"][node_path][field] = value
                mapping = {n: [str(uuid.uuid4())] for n in graph["nodes"]}
                item_id = next(self.next_id)
                session_id = str(uuid.uuid4())
                item = {"item_id": item_id, "status": "pending", "status_sequence": 0, "priority": 0,
                        "batch_id": batch_id, "origin": batch.get("origin"),
                        "destination": batch.get("destination"), "session_id": session_id,
                        "queue_id": queue_id, "error_type": None, "error_message": None,
                        "error_traceback": None, "created_at": created, "updated_at": created,
                        "started_at": None, "completed_at": None, "user_id": None,
                        "field_values": [{"node_path": p, "field_name": f, "value": v}
                                         for p, f, v in values] or None,
                        "retried_from_item_id": None, "workflow": batch.get("workflow"),
                        "session": {"id": session_id, "graph": graph, "execution_graph": {"nodes": {}, "edges": []},
                                    "executed": [], "executed_history": [], "results": {}, "errors": {},
                                    "source_prepared_mapping": mapping,
                                    "prepared_source_mapping": {v[0]: k for k, v in mapping.items()}}}
                self.items[item_id] = item
                self.tally[batch_id]["pending"] += 1
                ids.append(item_id)
        arrived = asyncio.get_running_loop().time()
        for item_id in ids:
            self.pending.put_nowait((arrived, self.items[item_id]))
        await self.sio.emit("batch_enqueued", {"queue_id": queue_id, "batch_id": batch_id,
                                               "enqueued": len(ids), "requested": len(ids),
                                               "priority": 0, "origin": batch.get("origin")},
                            room=queue_id)
        return JSONResponse({"queue_id": queue_id, "enqueued": len(ids), "requested": len(ids),
                             "batch": batch, "priority": 0, "item_ids": ids})

    async def items_by_ids(self, request: Request):
        ids = (await request.json())["item_ids"]
        return JSONResponse([self.items[i] for i in ids if i in self.items])

    async def summaries_by_ids(self, request: Request):
        ids = (await request.json())["item_ids"]
        return JSONResponse([{k: v for k, v in self.items[i].items() if k not in ("session", "workflow", "field_values")}
                             for i in ids if i in self.items])

    async def item_ids(self, request: Request):
        return JSONResponse({"item_ids": sorted(self.items, reverse=True), "total_count": len(self.items)})

    async def item(self, request: Request):
        item_id = request.path_params["item_id"]
        if item_id not in self.items:
            return JSONResponse({"detail": "Queue item not found"}, status_code=404)
        if request.method == "DELETE":
            item = self.items.pop(item_id)
            self.tally[item["batch_id"]][item["status"]] -= 1
            return JSONResponse(None)
        return JSONResponse(self.items[item_id])

    async def cancel(self, item):
        if item["status"] in ("pending", "in_progress"):
            self.set_status(item, "canceled")
            item["completed_at"] = now()
            await self.changed(item)
            return True
        return False

    async def cancel_item(self, request: Request):
        item = self.items.get(request.path_params["item_id"])
        if item is None:
            return JSONResponse({"detail": "Queue item not found"}, status_code=404)
        await self.cancel(item)
        return JSONResponse(item)

    async def cancel_batches(self, request: Request):
        batch_ids = set((await request.json())["batch_ids"])
        n = 0
        for item in list(self.items.values()):
            if item["batch_id"] in batch_ids and await self.cancel(item):
                n += 1
        return JSONResponse({"canceled": n})

    async def batch_status(self, request: Request):
        batch_id = request.path_params["batch_id"]
        first = next((i for i in self.items.values() if i["batch_id"] == batch_id), {})
        return JSONResponse({"queue_id": request.path_params["queue_id"], "batch_id": batch_id,
                             "origin": first.get("origin"), "destination": first.get("destination"),
                             **self.counts(batch_id)})

    async def status(self, request: Request):
        running = next((i for i in self.items.values() if i["status"] == "in_progress"), None)
        return JSONResponse({"queue": {"queue_id": request.path_params["queue_id"],
                                       "item_id": running and running["item_id"],
                                       "batch_id": running and running["batch_id"],
                                       "session_id": running and running["session_id"], **self.counts()},
                             "processor": {"is_started": True, "is_processing": running is not None}})


async def main():
    session_ms, slowdowns = float(sys.argv[1]), [float(s) for s in sys.argv[2:]]
    servers = []
    for slowdown in slowdowns:
        fake, port = FakeServer(session_ms * slowdown / 1000), free_port()
        config = uvicorn.Config(fake.app, host="127.0.0.1", port=port, log_level="warning",
                                access_log=False, lifespan="off", ws="websockets-sansio")
        server = uvicorn.Server(config)
        servers.append(server)
        asyncio.create_task(server.serve())
        asyncio.create_task(fake.process())
        while not server.started:
            await asyncio.sleep(0.01)
        print(f"http://127.0.0.1:{port}", flush=True)
    print("ready", flush=True)
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)
    for server in servers:
        server.should_exit = True
    await asyncio.sleep(0.3)


if __name__ == "__main__":
    asyncio.run(main())
