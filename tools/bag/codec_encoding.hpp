// How meshy's codec ids appear in an MCAP file, and back. One table, documented in docs/bag.md:
//
//   codec id        message_encoding        Schema record (encoding "", no data)
//   1 msgpack       msgpack (registered)    meshy.msgpack: a msgpack array of the arguments
//   2 cereal        x-meshy-cereal          meshy.cereal: cereal binary archive of the arguments
//   3 raw           x-meshy-raw             meshy.raw: the bytes of one argument
//   other N         x-meshy-codec-N         meshy.codec-N: user codec N (128..255)
//
// Custom encodings carry the "x-" prefix the spec asks for. Every channel also carries the id in its
// metadata ("meshy.codec": "N"), which is what `meshy bag play` reads first.
#pragma once

#include <meshy/codec.hpp>
#include <optional>
#include <string>
#include <string_view>

#include "bag/mcap_format.hpp"

namespace meshy::bag {

/// Header profile of meshy's recordings: the channel metadata keys below are defined by it.
inline constexpr std::string_view meshy_profile = "x-meshy";
/// Channel metadata keys.
inline constexpr std::string_view metadata_codec = "meshy.codec";          ///< decimal codec id
inline constexpr std::string_view metadata_sender_id = "meshy.sender_id";  ///< sending node's UUID
inline constexpr std::string_view metadata_sender = "meshy.sender";        ///< sending node, "name@host"

/// The Channel's message_encoding for a codec id.
std::string message_encoding(CodecId codec);
/// The Schema record's name for a codec id (its encoding is "" and its data empty).
std::string schema_name(CodecId codec);
/// The codec id a channel's messages were recorded with: its "meshy.codec" metadata, else its
/// message_encoding. nullopt for an encoding meshy cannot send (a file from another tool).
std::optional<CodecId> channel_codec(const mcap::Channel& channel);

}  // namespace meshy::bag
