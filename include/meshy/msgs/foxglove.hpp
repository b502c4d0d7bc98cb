/// @file
/// Foxglove's well-known message types as meshy messages: the field names and JSON forms of
/// Foxglove's published schemas (docs.foxglove.dev, "Message schemas"), so that Foxglove's panels
/// (Image, 3D, Log, Map, Plot) show them when they arrive through `meshy bridge` or in a bag.
///
/// ```cpp
/// #include <meshy/msgs/foxglove.hpp>
/// meshy::msgs::foxglove::Log log{.timestamp = meshy::msgs::foxglove::Timestamp::now(),
///                                .level = meshy::msgs::foxglove::Log::info, .message = "hello"};
/// co_await node.send("/log", log);
/// ```
///
/// Times are {sec, nsec}; `bytes` fields are msgpack `bin` (base64 in JSON); enumerations are
/// integers with their values as constants of the struct.
#pragma once

#include <chrono>
#include <cstdint>
#include <meshy/codecs/msgpack.hpp>
#include <meshy/type.hpp>
#include <string>
#include <vector>

namespace meshy::msgs::foxglove {

/// A point in time: seconds and nanoseconds since the epoch (Foxglove's `time`).
struct Timestamp {
    std::uint32_t sec = 0;
    std::uint32_t nsec = 0;
    /// The system clock now.
    static Timestamp now() {
        const auto ns =
            std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::system_clock::now().time_since_epoch())
                .count();
        return {static_cast<std::uint32_t>(ns / 1000000000), static_cast<std::uint32_t>(ns % 1000000000)};
    }
    MSGPACK_DEFINE_MAP(sec, nsec)
    MESHY_TYPE("time", sec, nsec);
};

/// A vector in 3D space.
struct Vector3 {
    double x = 0;
    double y = 0;
    double z = 0;
    MSGPACK_DEFINE_MAP(x, y, z)
    MESHY_TYPE("foxglove.Vector3", x, y, z);
};

/// A quaternion (orientation in 3D space).
struct Quaternion {
    double x = 0;
    double y = 0;
    double z = 0;
    double w = 1;
    MSGPACK_DEFINE_MAP(x, y, z, w)
    MESHY_TYPE("foxglove.Quaternion", x, y, z, w);
};

/// A position and orientation in 3D space.
struct Pose {
    Vector3 position;
    Quaternion orientation;
    MSGPACK_DEFINE_MAP(position, orientation)
    MESHY_TYPE("foxglove.Pose", position, orientation);
};

/// An RGBA color, each component in 0..1.
struct Color {
    double r = 0;
    double g = 0;
    double b = 0;
    double a = 1;
    MSGPACK_DEFINE_MAP(r, g, b, a)
    MESHY_TYPE("foxglove.Color", r, g, b, a);
};

/// A key with its value.
struct KeyValuePair {
    std::string key;
    std::string value;
    MSGPACK_DEFINE_MAP(key, value)
    MESHY_TYPE("foxglove.KeyValuePair", key, value);
};

/// An image compressed as jpeg, png, webp or avif (`format`).
struct CompressedImage {
    Timestamp timestamp;
    std::string frame_id;
    std::vector<std::uint8_t> data;
    std::string format;
    MSGPACK_DEFINE_MAP(timestamp, frame_id, data, format)
    MESHY_TYPE("foxglove.CompressedImage", timestamp, frame_id, data, format);
};

/// An uncompressed image: `height` rows of `step` bytes in `encoding` (rgb8, mono8, bgra8, ...).
struct RawImage {
    Timestamp timestamp;
    std::string frame_id;
    std::uint32_t width = 0;
    std::uint32_t height = 0;
    std::string encoding;
    std::uint32_t step = 0;
    std::vector<std::uint8_t> data;
    MSGPACK_DEFINE_MAP(timestamp, frame_id, width, height, encoding, step, data)
    MESHY_TYPE("foxglove.RawImage", timestamp, frame_id, width, height, encoding, step, data);
};

/// Where frame `child_frame_id` is relative to `parent_frame_id`.
struct FrameTransform {
    Timestamp timestamp;
    std::string parent_frame_id;
    std::string child_frame_id;
    Vector3 translation;
    Quaternion rotation;
    MSGPACK_DEFINE_MAP(timestamp, parent_frame_id, child_frame_id, translation, rotation)
    MESHY_TYPE("foxglove.FrameTransform", timestamp, parent_frame_id, child_frame_id, translation, rotation);
};

/// A timestamped pose in a named frame.
struct PoseInFrame {
    Timestamp timestamp;
    std::string frame_id;
    Pose pose;
    MSGPACK_DEFINE_MAP(timestamp, frame_id, pose)
    MESHY_TYPE("foxglove.PoseInFrame", timestamp, frame_id, pose);
};

/// One field of the packed elements of a PointCloud's `data`.
struct PackedElementField {
    static constexpr std::uint8_t unknown = 0;  ///< NumericType values (`type`)
    static constexpr std::uint8_t uint8 = 1;
    static constexpr std::uint8_t int8 = 2;
    static constexpr std::uint8_t uint16 = 3;
    static constexpr std::uint8_t int16 = 4;
    static constexpr std::uint8_t uint32 = 5;
    static constexpr std::uint8_t int32 = 6;
    static constexpr std::uint8_t float32 = 7;
    static constexpr std::uint8_t float64 = 8;

    std::string name;
    std::uint32_t offset = 0;  ///< byte offset within a point
    std::uint8_t type = 0;     ///< a NumericType value above
    MSGPACK_DEFINE_MAP(name, offset, type)
    MESHY_TYPE("foxglove.PackedElementField", name, offset, type);
};

/// Points packed in `data`, `point_stride` bytes each, laid out by `fields` (at least two of x, y, z).
struct PointCloud {
    Timestamp timestamp;
    std::string frame_id;
    Pose pose;
    std::uint32_t point_stride = 0;
    std::vector<PackedElementField> fields;
    std::vector<std::uint8_t> data;
    MSGPACK_DEFINE_MAP(timestamp, frame_id, pose, point_stride, fields, data)
    MESHY_TYPE("foxglove.PointCloud", timestamp, frame_id, pose, point_stride, fields, data);
};

/// A log line.
struct Log {
    static constexpr std::uint8_t unknown = 0;  ///< LogLevel values (`level`)
    static constexpr std::uint8_t debug = 1;
    static constexpr std::uint8_t info = 2;
    static constexpr std::uint8_t warning = 3;
    static constexpr std::uint8_t error = 4;
    static constexpr std::uint8_t fatal = 5;

    Timestamp timestamp;
    std::uint8_t level = info;
    std::string message;
    std::string name;  ///< process or node name
    std::string file;
    std::uint32_t line = 0;
    MSGPACK_DEFINE_MAP(timestamp, level, message, name, file, line)
    MESHY_TYPE("foxglove.Log", timestamp, level, message, name, file, line);
};

/// A satellite navigation fix.
struct LocationFix {
    static constexpr std::uint8_t covariance_unknown = 0;  ///< PositionCovarianceType values
    static constexpr std::uint8_t covariance_approximated = 1;
    static constexpr std::uint8_t covariance_diagonal_known = 2;
    static constexpr std::uint8_t covariance_known = 3;

    Timestamp timestamp;
    std::string frame_id;
    double latitude = 0;                          ///< degrees
    double longitude = 0;                         ///< degrees
    double altitude = 0;                          ///< meters
    std::array<double, 9> position_covariance{};  ///< m^2, East-North-Up, row-major
    std::uint8_t position_covariance_type = covariance_unknown;
    Color color;
    std::vector<KeyValuePair> metadata;
    MSGPACK_DEFINE_MAP(timestamp,
                       frame_id,
                       latitude,
                       longitude,
                       altitude,
                       position_covariance,
                       position_covariance_type,
                       color,
                       metadata)
    MESHY_TYPE("foxglove.LocationFix",
               timestamp,
               frame_id,
               latitude,
               longitude,
               altitude,
               position_covariance,
               position_covariance_type,
               color,
               metadata);
};

}  // namespace meshy::msgs::foxglove
