/* Export macro and version of the factornet library. */
#ifndef FACTORNET_EXPORT_H
#define FACTORNET_EXPORT_H

#if defined(FNET_STATIC_DEFINE)
#define FNET_API
#elif defined(__GNUC__)
#define FNET_API __attribute__((visibility("default")))
#else
#define FNET_API
#endif

#define FNET_VERSION_MAJOR 0
#define FNET_VERSION_MINOR 1
#define FNET_VERSION_PATCH 0
#define FNET_VERSION_STRING "0.1.0"

#endif
