// Package brokertest holds the end-to-end tests of wmprom on real brokers:
// Kafka (watermill-kafka), RabbitMQ (watermill-amqp), NATS core and
// JetStream (watermill-nats) and Redis streams (watermill-redisstream).
//
// It has no code of its own; the tests live in _test.go files so that the
// broker packages stay out of the library's imports. Each test picks its
// broker from an environment variable (WMPROM_TEST_KAFKA, WMPROM_TEST_AMQP,
// WMPROM_TEST_NATS, WMPROM_TEST_REDIS), else from testcontainers when a
// Docker engine answers, else from an in-process implementation (kfake,
// embedded nats-server, miniredis), and logs which one it used.
package brokertest
