#ifndef RELAY_CRABBITMQ_SHIM_H
#define RELAY_CRABBITMQ_SHIM_H

// rabbitmq-c 0.11 (Debian librabbitmq-dev) uses the flat header layout.
#include <amqp.h>
#include <amqp_framing.h>
#include <amqp_tcp_socket.h>
#include <amqp_ssl_socket.h>

// amqp_login is variadic, which Swift cannot call: this fixes the PLAIN mechanism's two arguments.
static inline amqp_rpc_reply_t relay_amqp_login_plain(amqp_connection_state_t state, const char *vhost,
                                                      int channel_max, int frame_max, int heartbeat,
                                                      const char *user, const char *password) {
    return amqp_login(state, vhost, channel_max, frame_max, heartbeat, AMQP_SASL_METHOD_PLAIN, user, password);
}

// Field values are a tagged union; building them here keeps union layout out of Swift.
static inline amqp_field_value_t relay_amqp_field_utf8(amqp_bytes_t bytes) {
    amqp_field_value_t value;
    value.kind = AMQP_FIELD_KIND_UTF8;
    value.value.bytes = bytes;
    return value;
}

static inline amqp_field_value_t relay_amqp_field_i64(int64_t number) {
    amqp_field_value_t value;
    value.kind = AMQP_FIELD_KIND_I64;
    value.value.i64 = number;
    return value;
}

static inline amqp_field_value_t relay_amqp_field_bool(int flag) {
    amqp_field_value_t value;
    value.kind = AMQP_FIELD_KIND_BOOLEAN;
    value.value.boolean = flag ? 1 : 0;
    return value;
}

static inline amqp_bytes_t relay_amqp_bytes(const void *pointer, size_t length) {
    amqp_bytes_t bytes;
    bytes.len = length;
    bytes.bytes = (void *)pointer;
    return bytes;
}

// Macros Swift does not import.
static const amqp_flags_t relay_amqp_basic_content_type_flag = AMQP_BASIC_CONTENT_TYPE_FLAG;
static const amqp_flags_t relay_amqp_basic_headers_flag = AMQP_BASIC_HEADERS_FLAG;
static const amqp_flags_t relay_amqp_basic_delivery_mode_flag = AMQP_BASIC_DELIVERY_MODE_FLAG;
static const amqp_flags_t relay_amqp_basic_message_id_flag = AMQP_BASIC_MESSAGE_ID_FLAG;
static const amqp_flags_t relay_amqp_basic_timestamp_flag = AMQP_BASIC_TIMESTAMP_FLAG;

// Method ids are cast macros, which Swift does not import either.
static const amqp_method_number_t relay_amqp_basic_deliver_method = AMQP_BASIC_DELIVER_METHOD;
static const amqp_method_number_t relay_amqp_basic_ack_method = AMQP_BASIC_ACK_METHOD;
static const amqp_method_number_t relay_amqp_basic_nack_method = AMQP_BASIC_NACK_METHOD;
static const amqp_method_number_t relay_amqp_basic_return_method = AMQP_BASIC_RETURN_METHOD;
static const amqp_method_number_t relay_amqp_basic_cancel_method = AMQP_BASIC_CANCEL_METHOD;
static const amqp_method_number_t relay_amqp_channel_close_method = AMQP_CHANNEL_CLOSE_METHOD;
static const amqp_method_number_t relay_amqp_channel_close_ok_method = AMQP_CHANNEL_CLOSE_OK_METHOD;
static const amqp_method_number_t relay_amqp_connection_close_method = AMQP_CONNECTION_CLOSE_METHOD;
static const amqp_method_number_t relay_amqp_connection_close_ok_method = AMQP_CONNECTION_CLOSE_OK_METHOD;

#endif
