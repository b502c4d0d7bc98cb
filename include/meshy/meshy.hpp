/// @file
/// Everything meshy offers to an application: include this one header.
#pragma once

#include "meshy/buffer.hpp"
#include "meshy/codec.hpp"
#include "meshy/codecs/cereal.hpp"
#include "meshy/codecs/msgpack.hpp"
#include "meshy/codecs/raw.hpp"
#include "meshy/domain_key.hpp"
#include "meshy/error.hpp"
#include "meshy/load_balancer.hpp"
#include "meshy/log.hpp"
#include "meshy/message.hpp"
#include "meshy/node.hpp"
#include "meshy/node_options.hpp"
