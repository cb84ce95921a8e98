{
  "targets": [
    {
      "target_name": "datagram",
      "sources": ["datagram.c"],
      "cflags": ["-std=gnu11", "-O2", "-Wall", "-Wextra", "-Werror", "-Wno-unused-parameter"]
    },
    {
      "target_name": "tftp_pump",
      "sources": ["tftp_pump.c"],
      "cflags": ["-std=gnu11", "-O2", "-Wall", "-Wextra", "-Werror", "-Wno-unused-parameter"]
    },
    {
      "target_name": "file_sender",
      "sources": ["file_sender.c"],
      "cflags": ["-std=gnu11", "-O2", "-Wall", "-Wextra", "-Werror", "-Wno-unused-parameter"]
    },
    {
      "target_name": "data_lock",
      "sources": ["data_lock.c"],
      "cflags": ["-std=gnu11", "-O2", "-Wall", "-Wextra", "-Werror", "-Wno-unused-parameter"]
    }
  ]
}
