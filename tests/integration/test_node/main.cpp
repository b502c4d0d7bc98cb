// meshy_test_node: one mesh node per process for the integration tests, driven by a subcommand and
// reporting through machine-readable lines on stdout (one record per line, flushed at once):
//
//   READY id=<uuid> name=<name> backend=<avahi|local> tcp=<port|0> unix=<path|->
//   RECV <topic> <seq> <text>            one per message received (listen; send --reply-topic)
//   COUNT <n>                            listen --count-only, every --report-every messages
//   FINAL total=<n> senders=<s> violations=<v> missing=<m>, then ORDER_OK <n> | ORDER_BAD <n>
//   LISTENERS <n> [<id>:<transport>...]  send: whenever the set of nodes listening to the topic changes
//   SENT <n>                             send: after the last message
//   REPLIES <n>                          send --until-replies: replies received
//   CALLED <service>                     provide: a request arrived
//   RESULT <value> | ERROR <errc-name> <what>   call (exit 0 / 1); any failure prints ERROR, exit 1
//   NODE id=.. name=.. transport=.. topics=a,b services=c,d  /  NODES_END count=<n>   (nodes)
//
// Messages on topics are (std::int64_t seq, std::string text). listen, provide and probe run the
// node on an io_context with the coroutine API; send, call and nodes run it on its own thread with
// the blocking API, so both halves of the public API are exercised. Every node binds 127.0.0.1.
#include <exception>

#include "test_node.hpp"

using namespace test_node;

int main(int argc, char** argv) {
    const Args args = parse(argc, argv);
    try {
        if (args.command == "listen") {
            return cmd_listen(args);
        }
        if (args.command == "send") {
            return cmd_send(args);
        }
        if (args.command == "provide") {
            return cmd_provide(args);
        }
        if (args.command == "call") {
            return cmd_call(args);
        }
        if (args.command == "blobs") {
            return cmd_blobs(args);
        }
        if (args.command == "nodes") {
            return cmd_nodes(args);
        }
        if (args.command == "probe") {
            return cmd_probe(args);
        }
        usage("unknown command '" + args.command + "'");
    } catch (const std::exception& e) {
        emit(error_line(e));
        return 1;
    }
}
