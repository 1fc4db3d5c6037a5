#!/usr/bin/env node
import { launch } from '../dist/launcher.js';

await launch();
