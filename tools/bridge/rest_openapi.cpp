#include "bridge/rest_openapi.hpp"

namespace meshy::cli::bridge {

std::string_view rest_openapi_json() noexcept {
    // Kept by hand beside rest_api.cpp; docs/bridge-rest.md says the same in prose.
    static constexpr std::string_view document = R"json({
  "openapi": "3.0.3",
  "info": {
    "title": "meshy bridge REST API",
    "version": "1",
    "description": "Topics, services and camera streams of a meshy mesh over HTTP, on the port of the bridge's rosbridge WebSocket, with its token (Authorization: Bearer TOKEN, or ?token=) and allowlists (--topics-glob, --publish-glob, --services-glob). Names may be given with or without a leading '/', and may contain '/' (or %2F)."
  },
  "components": {
    "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
    "schemas": {
      "Error": {"type": "object", "properties": {"error": {"type": "string"}, "status": {"type": "integer"}}},
      "Arguments": {
        "description": "{\"args\": [...], \"kwargs\": {...}} (either may be left out), or any other JSON value as the one argument",
        "oneOf": [
          {"type": "object", "properties": {"args": {"type": "array", "items": {}}, "kwargs": {"type": "object"}}},
          {}
        ]
      },
      "Message": {
        "description": "A message as rosbridge shows it: keyword arguments as members, positional ones under args",
        "type": "object"
      }
    },
    "responses": {
      "BadRequest": {"description": "Bad body or name", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}},
      "Unauthorized": {"description": "No token", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}},
      "Forbidden": {"description": "Wrong token, or a name outside the allowlists", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}
    },
    "parameters": {
      "name": {"name": "name", "in": "path", "required": true, "schema": {"type": "string"}}
    }
  },
  "security": [{"bearer": []}],
  "paths": {
    "/api/nodes": {
      "get": {
        "summary": "The nodes of the mesh",
        "responses": {
          "200": {"description": "Nodes with what they listen to, publish and provide", "content": {"application/json": {"schema": {"type": "array", "items": {"type": "object", "properties": {
            "name": {"type": "string"}, "id": {"type": "string"}, "host": {"type": "string"}, "domain": {"type": "string"},
            "transport": {"type": "string"}, "self": {"type": "boolean"},
            "listens": {"type": "array", "items": {"type": "string"}}, "publishes": {"type": "array", "items": {"type": "string"}},
            "services": {"type": "array", "items": {"type": "string"}}}}}}}},
          "401": {"$ref": "#/components/responses/Unauthorized"}, "403": {"$ref": "#/components/responses/Forbidden"}
        }
      }
    },
    "/api/topics": {
      "get": {
        "summary": "The topics of the mesh",
        "responses": {
          "200": {"description": "Topics with type, publishers and listeners", "content": {"application/json": {"schema": {"type": "array", "items": {"type": "object", "properties": {
            "name": {"type": "string"}, "type": {"type": "string"},
            "publishers": {"type": "array", "items": {"type": "string"}}, "listeners": {"type": "array", "items": {"type": "string"}}}}}}}},
          "401": {"$ref": "#/components/responses/Unauthorized"}, "403": {"$ref": "#/components/responses/Forbidden"}
        }
      }
    },
    "/api/services": {
      "get": {
        "summary": "The services of the mesh",
        "responses": {
          "200": {"description": "Services with their providers", "content": {"application/json": {"schema": {"type": "array", "items": {"type": "object", "properties": {
            "name": {"type": "string"}, "type": {"type": "string"}, "providers": {"type": "array", "items": {"type": "string"}}}}}}}},
          "401": {"$ref": "#/components/responses/Unauthorized"}, "403": {"$ref": "#/components/responses/Forbidden"}
        }
      }
    },
    "/api/topics/{name}": {
      "parameters": [{"$ref": "#/components/parameters/name"}],
      "post": {
        "summary": "Publish a message",
        "requestBody": {"required": true, "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Arguments"}}}},
        "responses": {
          "200": {"description": "Sent (to every listener there is; none is not an error)"},
          "400": {"$ref": "#/components/responses/BadRequest"}, "401": {"$ref": "#/components/responses/Unauthorized"},
          "403": {"$ref": "#/components/responses/Forbidden"}, "413": {"description": "Body over --max-message-size"}
        }
      }
    },
    "/api/topics/{name}/latest": {
      "parameters": [
        {"$ref": "#/components/parameters/name"},
        {"name": "wait", "in": "query", "description": "Seconds to wait for a first message (at most 30)", "schema": {"type": "number"}}
      ],
      "get": {
        "summary": "The last message of a topic (the bridge listens from the first request on)",
        "responses": {
          "200": {"description": "The message", "content": {"application/json": {"schema": {"type": "object", "properties": {
            "topic": {"type": "string"}, "msg": {"$ref": "#/components/schemas/Message"},
            "received_at_ms": {"type": "integer"}, "sent_at_ns": {"type": "integer"}}}}}},
          "401": {"$ref": "#/components/responses/Unauthorized"}, "403": {"$ref": "#/components/responses/Forbidden"},
          "404": {"description": "No message yet"}
        }
      }
    },
    "/api/services/{name}": {
      "parameters": [
        {"$ref": "#/components/parameters/name"},
        {"name": "timeout", "in": "query", "description": "Seconds (default: --service-timeout)", "schema": {"type": "number"}}
      ],
      "post": {
        "summary": "Call a service",
        "requestBody": {"content": {"application/json": {"schema": {"$ref": "#/components/schemas/Arguments"}}}},
        "responses": {
          "200": {"description": "The reply", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Message"}}}},
          "400": {"$ref": "#/components/responses/BadRequest"}, "401": {"$ref": "#/components/responses/Unauthorized"},
          "403": {"$ref": "#/components/responses/Forbidden"}, "404": {"description": "No node provides the service"},
          "502": {"description": "The service failed (its error message) or the connection was lost"},
          "504": {"description": "No reply within the timeout"}
        }
      }
    },
    "/stream/{name}": {
      "parameters": [
        {"$ref": "#/components/parameters/name"},
        {"name": "max_fps", "in": "query", "description": "Frames a second at most (0.1 to 60, default 30)", "schema": {"type": "number"}},
        {"name": "token", "in": "query", "description": "The token, for an <img> that cannot send a header", "schema": {"type": "string"}}
      ],
      "get": {
        "summary": "MJPEG stream of a topic carrying JPEG images (raw bytes, a msgpack bin, or {data, format: jpeg})",
        "responses": {
          "200": {"description": "multipart/x-mixed-replace; boundary=meshyframe", "content": {"multipart/x-mixed-replace": {}}},
          "401": {"$ref": "#/components/responses/Unauthorized"}, "403": {"$ref": "#/components/responses/Forbidden"}
        }
      }
    },
    "/api/openapi.json": {
      "get": {"summary": "This document (no token needed)", "security": [], "responses": {"200": {"description": "OpenAPI 3"}}}
    }
  }
}
)json";
    return document;
}

}  // namespace meshy::cli::bridge
