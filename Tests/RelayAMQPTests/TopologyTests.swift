import Foundation
import RelayAMQP
import Testing

@Suite("Topology from a definitions file")
struct TopologyTests {
    func definitions(_ vhosts: (exchange: String, queue: String, binding: String)) -> Data {
        Data(
            #"""
            {"exchanges":[{"name":"platform.events","vhost":"\#(vhosts.exchange)","type":"topic","durable":true}],
             "queues":[{"name":"relay.events","vhost":"\#(vhosts.queue)","durable":true,"arguments":{"x-queue-type":"quorum"}}],
             "bindings":[{"source":"platform.events","vhost":"\#(vhosts.binding)","destination":"relay.events",
                          "destination_type":"queue","routing_key":"#"}]}
            """#.utf8
        )
    }

    @Test("every definition is the relay's, whatever vhost the file names: the relay declares into amqp.vhost")
    func vhostFieldsAreIgnored() throws {
        let topology = try Topology.parse(definitions(("/", "/", "/")))
        #expect(topology.exchanges.map(\.name) == ["platform.events"])
        #expect(topology.queues.map(\.name) == ["relay.events"])
        #expect(topology.bindings.count == 1)
        let elsewhere = try Topology.parse(definitions(("contact-center", "contact-center", "contact-center")))
        #expect(elsewhere == topology)
    }

    @Test("one name in two vhosts is refused, naming it")
    func sameNameInTwoVhosts() throws {
        let text = #"""
            {"queues":[{"name":"relay.events","vhost":"/"},{"name":"relay.events","vhost":"tenant-b"}]}
            """#
        let error = try #require(throws: AMQPError.self) { try Topology.parse(Data(text.utf8), source: "defs.json") }
        #expect(error.message.contains("queue 'relay.events'"))
        #expect(error.message.contains("defs.json"))
    }

    @Test("an exchange and a queue of one name, in two vhosts, are two things: accepted")
    func sameNameDifferentKinds() throws {
        let text = #"""
            {"exchanges":[{"name":"relay.dead","vhost":"/","type":"topic"}],
             "queues":[{"name":"relay.dead","vhost":"tenant-b"}]}
            """#
        let topology = try Topology.parse(Data(text.utf8))
        #expect(topology.exchanges.count == 1 && topology.queues.count == 1)
    }
}
