"""Byte-exact frames from the standard's worked examples and the public codecs.

STANDARD_* are GB/T 26875.3-2011's own examples (as transcribed in ActorLancer/GB-T-26875.3.2011-rs,
GB26875文档.md): a transmission device at address 889 (79 03 ..) and a centre at 88888 (38 5B 01 ..),
time 2012-09-26 09:58:02. GO_* come from shootingfans/codec_gb26875_3_2011 (codec/*_test.go).
"""

from __future__ import annotations


def h(text: str) -> bytes:
    return bytes.fromhex(text)


DEVICE = 0x000379
CENTRE = 0x015B38

# "2号10区 感烟探测器 火警": component status, smoke detector (type 40) at zone 10 position 2,
# status 0x0002, description 30 spaces and a NUL. Bit 0 (run/test) is clear: the standard's own alarm is sent "in test mode" by a
# codec that reads bit 0 as "normal", which is why SPEC 12 says never to drop an alarm for bit 0.
STANDARD_SMOKE_ALARM = h(
    "40 40 01 00 01 01 20 3A 09 1A 09 0C 79 03 00 00 00 00 38 5B 01 00 00 00 30 00 02"
    " 02 01 01 01 28 0A 00 02 00 02 00" + " 20" * 30 + " 00 02 3A 09 1A 09 0C 46 23 23"
)
# The centre's confirm and deny of serial 1 (sent at 09:58:35): addresses swapped, no data.
STANDARD_CONFIRM = h(
    "40 40 01 00 01 01 23 3A 09 1A 09 0C 38 5B 01 00 00 00 79 03 00 00 00 00 00 00 03 AB 23 23"
)
STANDARD_DENY = h("40 40 01 00 01 01 23 3A 09 1A 09 0C 38 5B 01 00 00 00 79 03 00 00 00 00 00 00 06 AE 23 23")
# "上传传输装置主电源故障": type 21, status 0x08 = bit 3, main power fault (not "shield").
STANDARD_MAIN_POWER_FAULT = h(
    "40 40 01 00 01 01 20 3A 09 1A 09 0C 79 03 00 00 00 00 38 5B 01 00 00 00 09 00 02 15 01 08 02 3A 09 1A 09 0C 42 23 23"
)
# "上传查岗应答操作记录": type 24, operation 0x20 (roll-call answered), operator 1.
STANDARD_ROLL_CALL_ANSWER = h(
    "40 40 01 00 01 01 20 3A 09 1A 09 0C 79 03 00 00 00 00 38 5B 01 00 00 00 0A 00 02 18 01 20 01 02 3A 09 1A 09 0C 5F 23 23"
)
# "上传软件版本号 V1.1": type 25.
STANDARD_VERSION = h(
    "40 40 01 00 01 01 20 3A 09 1A 09 0C 79 03 00 00 00 00 38 5B 01 00 00 00 04 00 02 19 01 01 01 C7 23 23"
)
# "上传传输装置时间": type 28.
STANDARD_DEVICE_TIME = h(
    "40 40 01 00 01 01 20 3A 09 1A 09 0C 79 03 00 00 00 00 38 5B 01 00 00 00 08 00 02 1C 01 02 3A 09 1A 09 0C 40 23 23"
)
# "读传输装置状态" (request, type 81) and the device's answer (command 5, type 21).
STANDARD_READ_STATUS = h(
    "40 40 01 00 01 01 20 3A 09 1A 09 0C 38 5B 01 00 00 00 79 03 00 00 00 00 03 00 04 51 01 00 FE 23 23"
)
STANDARD_STATUS_ANSWER = h(
    "40 40 01 00 01 01 20 3A 09 1A 09 0C 79 03 00 00 00 00 38 5B 01 00 00 00 09 00 05 15 01 08 02 3A 09 1A 09 0C 45 23 23"
)
# "同步用户信息传输装置时间": control command, type 90 with the time to set. The transcribed
# table calls the object a reserved byte; the example (and this gateway) sends the 6-byte time.
STANDARD_CLOCK_SYNC = h(
    "40 40 01 00 01 01 20 3A 09 1A 09 0C 38 5B 01 00 00 00 79 03 00 00 00 00 08 00 01 5A 01 02 3A 09 1A 09 0C 7D 23 23"
)
# "查岗命令": control command, type 91, one byte = 10 (minutes to answer).
STANDARD_ROLL_CALL = h(
    "40 40 01 00 01 01 20 3A 09 1A 09 0C 38 5B 01 00 00 00 79 03 00 00 00 00 03 00 01 5B 01 0A 0F 23 23"
)

# shootingfans reader_decoder_test.go: a component status from system 3, component type 0 at
# address 0x000600d9, fire alarm (0x0002, bit 0 clear), description "Ａ区１层呷哺走廊" (GB18030),
# source 0, destination 0x010203040506. The test writes the frame once with checksum 0x63 and then
# three times with 0x68; the sum of serial..data is 0x68, so the first copy is a corrupt frame that
# must be denied, and the three others decode.
_GO_BODY = (
    "40 40 00 00 01 01 18 0d 11 16 0a 14 00 00 00 00 00 00 06 05 04 03 02 01 30 00 02"
    " 02 01 01 03 00 d9 00 06 00 02 00 a3 c1 c7 f8 a3 b1 b2 e3 df c8 b2 b8 d7 df c0 c8"
    + " 00" * 15
    + " 30 12 13 01 08 14"
)
GO_ALARM_BAD_CHECKSUM = h(_GO_BODY + " 63 23 23")
GO_ALARM = h(_GO_BODY + " 68 23 23")

# shootingfans codec_test.go application data units (no frame around them).
GO_SYSTEM_STATUS = h("01 01 01 02 04 02 04 00 09 02 07 15")
GO_TWO_SYSTEM_STATUS = h("01 02 01 02 04 02 04 00 09 02 07 15 0d 03 05 01 05 00 09 02 07 15")
# Component type 0x79 (121, alarm device) at 0x04030201, status 0x0204 (fault and bit 9), "7楼02室会议室烟感".
# The Go codec reads bit 9 (its "bit 10") of a component as nothing and bit 8 as main power; by
# SPEC 12 bit 8 is power fault and bit 9 is reserved, so 0x0204 is a fault with a reserved bit set.
GO_COMPONENT_STATUS = h(
    "02 01 01 02 79 01 02 03 04 04 02 37 c2 a5 30 32 ca d2 bb e1 d2 e9 ca d2 d1 cc b8 d0"
    + " 00" * 14
    + " 04 00 09 02 07 15"
)
GO_ANALOG = h("03 01 01 02 28 01 02 03 04 03 20 03 04 00 09 02 07 15")  # smoke detector, temperature 80.0 °C
GO_TWO_ANALOG = h(
    "03 02 01 02 28 01 02 03 04 03 20 03 04 00 09 02 07 15 0d 03 79 03 04 05 06 02 01 50 05 00 09 02 07 15"
)
GO_SYSTEM_OPERATION = h("04 01 01 02 84 fa 04 00 09 02 07 15")
GO_SYSTEM_VERSION = h("05 01 01 02 03 04")
GO_SYSTEM_CONFIG = h("06 01 01 02 1e 37 c2 a5 30 32 ca d2 bb e1 d2 e9 ca d2 d1 cc b8 d0" + " 00" * 13)
GO_COMPONENT_CONFIG = h(
    "07 01 01 02 28 01 02 03 04 37 c2 a5 30 32 ca d2 bb e1 d2 e9 ca d2 d1 cc b8 d0" + " 00" * 14
)
GO_SYSTEM_TIME = h("08 01 01 02 04 00 09 02 07 15")
GO_TRANSMITTER_STATUS = h("15 01 08 04 00 09 02 07 15")  # 0x08: bit 3, main power fault
GO_TRANSMITTER_OPERATION = h("18 01 31 fa 04 00 09 02 07 15")
GO_TRANSMITTER_VERSION = h("19 01 03 04")
GO_TRANSMITTER_CONFIG = h("1a 01 1e 37 c2 a5 30 32 ca d2 bb e1 d2 e9 ca d2 d1 cc b8 d0" + " 00" * 13)
GO_TRANSMITTER_TIME = h("1c 01 05 00 09 02 07 15")
# Go's "not enough" cases: too short for the count they declare.
GO_SHORT_UNITS = [h("01 01 03 04"), h("02 02 03"), h("03 02 03"), h("04 02 03"), h("05 02"), h("15 01")]
