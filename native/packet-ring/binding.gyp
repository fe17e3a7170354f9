{
  "targets": [
    {
      "target_name": "packet_ring",
      "sources": ["src/packet_ring.c", "src/ring.c"],
      "defines": ["NAPI_VERSION=8", "_GNU_SOURCE"],
      "cflags": ["-std=gnu11", "-O2", "-Wall", "-Wextra", "-Wno-unused-parameter"]
    }
  ]
}
