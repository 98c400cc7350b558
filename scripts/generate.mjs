// Regenerates gen/ from proto/ (npm run generate).
//
// Our schemas import buf/validate/validate.proto. Service authors get that file
// from the Buf Schema Registry (docs/validation.md); this repository builds
// offline, so it takes the file's descriptor from @bufbuild/protovalidate
// (which ships it in its generated code), lets protoc compile proto/ against
// it (--descriptor_set_in), and hands the resulting image to Buf, which
// lints it and generates the TypeScript as for any other input.
import { execFileSync } from "node:child_process";
import { mkdirSync, readdirSync, writeFileSync } from "node:fs";
import { join, relative } from "node:path";
import { create, toBinary } from "@bufbuild/protobuf";
import { FileDescriptorSetSchema } from "@bufbuild/protobuf/wkt";
import { file_buf_validate_validate } from "@bufbuild/protovalidate/gen/buf/validate/validate_pb.js";

const out = ".build/proto";
mkdirSync(out, { recursive: true });

// buf/validate/validate.proto and the files it imports, dependencies first.
const files = new Map();
const add = (file) => {
  if (files.has(file.name)) return;
  for (const dependency of file.dependencies) add(dependency);
  files.set(file.name, file.proto);
};
add(file_buf_validate_validate);
const dependencies = join(out, "dependencies.binpb");
writeFileSync(
  dependencies,
  toBinary(FileDescriptorSetSchema, create(FileDescriptorSetSchema, { file: [...files.values()] })),
);

const sources = readdirSync("proto", { recursive: true })
  .filter((name) => String(name).endsWith(".proto"))
  .map((name) => relative("proto", join("proto", String(name))))
  .sort();
const image = join(out, "image.binpb");
try {
  execFileSync(
    "protoc",
    [
      `--descriptor_set_in=${dependencies}`,
      "--proto_path=proto",
      "--include_imports",
      "--include_source_info",
      `--descriptor_set_out=${image}`,
      ...sources,
    ],
    { stdio: "inherit" },
  );
} catch (err) {
  if (err.code === "ENOENT") {
    console.error("protoc is missing: install it (Debian: apt-get install protobuf-compiler) and run again");
    process.exit(1);
  }
  process.exit(typeof err.status === "number" ? err.status : 1);
}

const buf = (...args) => {
  try {
    execFileSync("npx", ["--no-install", "buf", ...args], { stdio: "inherit" });
  } catch (err) {
    process.exit(typeof err.status === "number" ? err.status : 1);
  }
};
buf("lint", image, "--path", "windshift");
buf("generate", image, "--path", "windshift");
console.log(`generated gen/ from ${sources.length} files in proto/`);
