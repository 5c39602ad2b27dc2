#!/bin/sh
echo "deploying $TAG"
