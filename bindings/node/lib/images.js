'use strict';

// Images installed as npm packages (`npm install quicksand-go-debian-x64`),
// the Node counterpart of the Python binding's entry points: a package
// declares the folder holding its images in its package.json,
//   "quicksand-go": { "images": "images" }
// and a start searches those folders after the imageDirs it was given and
// before QUICKSAND_IMAGE_PATH and the default image folder. Packages are
// looked for in every node_modules folder Node would resolve ours from
// (module.paths: the project's, then each parent's), by name: quicksand-go-*
// and @quicksand-go/*.

const fs = require('fs');
const path = require('path');

const FIELD = 'quicksand-go';

/** The package folders in one node_modules folder that may be image packages. */
function candidatesIn(nodeModules) {
  let names;
  try {
    names = fs.readdirSync(nodeModules);
  } catch {
    return [];
  }
  const found = [];
  for (const name of names.sort()) {
    if (name.startsWith('quicksand-go-')) found.push(path.join(nodeModules, name));
    if (name === '@quicksand-go') {
      try {
        for (const sub of fs.readdirSync(path.join(nodeModules, name)).sort()) found.push(path.join(nodeModules, name, sub));
      } catch {
        // an unreadable scope folder holds nothing we can use
      }
    }
  }
  return found;
}

/**
 * The image folders of the installed image packages, nearest node_modules
 * first; a package found twice (hoisted and nested) counts once by name.
 * One whose package.json cannot be read or names no folder is skipped,
 * with a warning that names it (a broken package must not stop every start).
 */
function packageImageDirs(searchPaths = module.paths, warn = (m) => process.emitWarning(m)) {
  const dirs = [];
  const seen = new Set();
  for (const nodeModules of searchPaths) {
    for (const pkgDir of candidatesIn(nodeModules)) {
      let pkg;
      try {
        pkg = JSON.parse(fs.readFileSync(path.join(pkgDir, 'package.json'), 'utf8'));
      } catch (e) {
        if (e.code !== 'ENOENT') warn(`the image package in ${pkgDir} did not load: ${e.message}`);
        continue;
      }
      const decl = pkg && pkg[FIELD];
      if (!decl) continue; // a quicksand-go-* package that is no image package
      if (seen.has(pkg.name)) continue;
      if (typeof decl.images !== 'string' || decl.images === '' || path.isAbsolute(decl.images)) {
        warn(`the image package ${pkg.name} (${pkgDir}) names no image folder ("${FIELD}": {"images": "a folder inside it"})`);
        continue;
      }
      seen.add(pkg.name);
      dirs.push(path.join(pkgDir, decl.images));
    }
  }
  return dirs;
}

module.exports = { packageImageDirs, FIELD };
