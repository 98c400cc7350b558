/** The package's name, used as the OpenTelemetry instrumentation scope. */
export const NAME = "windshift";

/** The package's version; a test keeps it equal to package.json's. */
export const VERSION = "0.1.0";
