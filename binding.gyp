{
  "targets": [
    {
      "target_name": "vswio",
      "sources": ["native/vswio.cc"],
      "cflags": ["-O2", "-Wall", "-Wextra", "-fno-strict-aliasing"],
      "cflags_cc": ["-O2", "-Wall", "-Wextra", "-std=gnu++17"],
      "defines": ["NAPI_VERSION=8", "_GNU_SOURCE"]
    }
  ]
}
